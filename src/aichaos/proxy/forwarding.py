"""Forwarding to real upstreams: a lean HTTP/1.1 client with a keep-alive pool, raw bytes.

Why not `httpx.AsyncClient`: the proxy sits on every request's hot path. Forwarding with
httpx costs 14-20x the CPU per request of this client on the same server (measured by
benchmarks/hotpaths.py, see docs/performance.md): its pool (httpcore 1.0) probes every
pooled connection's socket for every request it places, and h11, anyio streams and the
client's defaults add the rest; a client also adds what a
transparent proxy must not: default headers, a cookie jar fed by upstream `set-cookie`,
decoding of compressed bodies. This client is an `asyncio.Protocol` around the C parser
uvicorn uses (`httptools`): one write per request, bodies handed on chunk by chunk as
they arrive, idle connections reused most-recent first, TLS for `https` upstreams.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from aichaos.proxy.headers import HeaderList

_HIGH_WATER = 1024 * 1024  # unread upstream bytes before reading pauses (a slow client)


class UpstreamError(Exception):
    """The upstream failed. `label` names the failure in records and error replies."""

    label = "UpstreamError"


class UpstreamConnectError(UpstreamError):
    """The upstream cannot be reached: refused, unknown host, TLS failure."""

    label = "ConnectError"


class UpstreamTimeout(UpstreamError):
    """The upstream was silent longer than the read timeout (or would not connect in time)."""

    label = "Timeout"


class UpstreamPoolExhausted(UpstreamError):
    """Every allowed connection to the upstream stayed busy for the whole connect timeout."""

    label = "PoolExhausted"


class UpstreamProtocolError(UpstreamError):
    """The upstream closed the connection early or sent something that is not HTTP."""

    label = "RemoteProtocolError"


class RequestBodyError(UpstreamError):
    """The streamed request body failed (`cause`: the client left, or its body went over the
    limit): the upstream request was aborted."""

    label = "RequestBodyError"

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the request body failed: {type(cause).__name__}")
        self.cause = cause


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: bytes
    prefix: bytes  # the base URL's path, prepended to every request's path

    @classmethod
    def parse(cls, base: str) -> _Origin:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base!r}")
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        header = shown if port == default else f"{shown}:{port}"
        return cls(parts.scheme, host, port, header.encode(), parts.path.rstrip("/").encode())


class UpstreamResponse:
    """An upstream answer: `status`, raw `headers`, the body as an async iterator of chunks.

    Call `release()` when done: a fully read answer returns its connection to the pool,
    an unfinished one closes it (which cancels the request upstream).
    """

    def __init__(self, connection: _Connection, head_only: bool) -> None:
        self.status = 0
        self.headers: HeaderList = []
        self.head_only = head_only
        self.complete = False
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False

    @property
    def ready(self) -> bool:
        """Whether the next read returns at once (a chunk is here, or the answer's end)."""
        return bool(self._chunks) or self.complete or self._error is not None

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered < _HIGH_WATER // 4:
                    self._connection.resume()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                raise StopAsyncIteration
            self._waiter = self._connection.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def take_all(self) -> list[bytes]:
        """Every chunk received and not yet read (the whole body once `complete`)."""
        chunks = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._connection.resume()
        return chunks

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _HIGH_WATER:
            self._connection.pause()
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if not self.complete:
            self._error = error
        self._wake()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._connection.done(reusable=self.complete and not self.head_only)


class _Connection(asyncio.Protocol):
    """One upstream connection carrying one request at a time."""

    def __init__(self, forwarder: Forwarder, origin: _Origin) -> None:
        self.forwarder, self.origin = forwarder, origin
        self.loop = forwarder.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.head: asyncio.Future[UpstreamResponse] | None = None
        self.closed = False
        self.reused = False
        self.received = False  # any byte of the current answer arrived
        self.keep_alive = False
        self.idle_since = 0.0
        self.last_activity = 0.0
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None
        self.pump: asyncio.Task[None] | None = None  # writes a streamed request body
        self.writable: asyncio.Future[None] | None = None  # set while writing is paused

    # --- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.loop.time()
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP from the upstream: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost ends the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self.resume_writing()
        if self.pump is not None:
            self.pump.cancel()
        self.forwarder._forget(self)
        response = self.response
        if response is None or response.complete:
            return
        if response.status and self._close_delimited(response):
            response._finish()  # a body without length ends with the connection
            return
        if not response.status and not self.received:
            message = "Server disconnected without sending a response."
        else:
            message = "peer closed connection without sending complete message body"
        self._fail(UpstreamProtocolError(message))

    def pause_writing(self) -> None:  # the upstream reads a streamed body slowly
        if self.writable is None:
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # --- httptools callbacks -------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            response.headers = []  # an interim answer: the real one follows
            return
        response.status = status
        if self.head is not None and not self.head.done():
            self.head.set_result(response)
        if response.head_only:
            response._finish()

    def on_body(self, body: bytes) -> None:
        if self.response is not None and body:
            self.response._push(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or not response.status:
            return  # the end of an interim (1xx) answer
        self.keep_alive = self.parser.should_keep_alive()
        response._finish()

    # --- requests ----------------------------------------------------------------
    def send(
        self,
        head: bytes,
        body: bytes,
        head_only: bool,
        rest: AsyncIterator[bytes] | None = None,
        chunked: bool = False,
    ) -> UpstreamResponse:
        """Write the request: `head` and `body` now, then `rest` as it arrives (in chunked
        transfer coding when `chunked`)."""
        assert self.transport is not None
        self.response = UpstreamResponse(self, head_only)
        self.head = self.loop.create_future()
        self.received = False
        self.last_activity = self.loop.time()
        timeout = self.forwarder.read_timeout
        if timeout is not None and self.timer is None:
            # one timer per connection, not per request: when it fires it looks at the
            # silence since `last_activity` and waits again for what is left
            self.timer = self.loop.call_later(timeout, self._check_silence)
        if chunked and body:
            body = b"%x\r\n%b\r\n" % (len(body), body)
        if len(body) < 65536:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            self.transport.write(body)
        if rest is not None:
            self.pump = self.loop.create_task(self._pump(rest, chunked))
        return self.response

    async def _pump(self, rest: AsyncIterator[bytes], chunked: bool) -> None:
        """Write the rest of a streamed body as it arrives, no faster than the upstream reads
        it; a body that fails (the client left, over the limit) aborts the request."""
        transport = self.transport
        assert transport is not None
        try:
            async for chunk in rest:
                while self.writable is not None and not self.closed:
                    await self.writable
                if self.closed:
                    return
                self.last_activity = self.loop.time()  # sending: the upstream is not silent
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked and not self.closed:
                transport.write(b"0\r\n\r\n")
        except Exception as exc:  # from the client's side: the body reader
            self._fail(RequestBodyError(exc))
            transport.abort()

    def _check_silence(self) -> None:
        timeout = self.forwarder.read_timeout
        assert timeout is not None
        if self.response is None or self.response.complete:
            self.timer = None  # no answer awaited: the next request arms it again
            return
        silent = self.loop.time() - self.last_activity
        if self.paused or silent < timeout:  # a slow client, not a silent upstream
            wait = timeout if self.paused else timeout - silent
            self.timer = self.loop.call_later(wait, self._check_silence)
            return
        self.timer = None
        self._fail(UpstreamTimeout(f"the upstream sent nothing for {timeout:g} s"))
        self.close()

    def _fail(self, error: UpstreamError) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        if self.response is not None:
            self.response._fail(error)

    @staticmethod
    def _close_delimited(response: UpstreamResponse) -> bool:
        for name, value in response.headers:
            low = name.lower()
            if low == b"content-length" or (low == b"transfer-encoding" and b"chunked" in value):
                return False
        return response.status not in (204, 304)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.last_activity = self.loop.time()
            self.transport.resume_reading()

    def done(self, *, reusable: bool) -> None:
        self.response = self.head = None
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()  # answered before the whole body went: the connection is spent
            reusable = False
        self.pump = None
        if reusable and self.keep_alive and not self.closed and not self.paused:
            self.forwarder._idle(self)
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class Forwarder:
    """Sends requests to real upstreams over pooled HTTP/1.1 connections (TLS for https).

    `read_timeout` bounds silence from the upstream (None: wait as long as the client
    does; a client that gives up disconnects, which cancels the request upstream).
    Up to `max_keepalive` idle connections per upstream are kept `keepalive_expiry`
    seconds, and at most `max_connections` are open per upstream at once: a request
    that finds them all busy waits up to `connect_timeout` for one, then fails with
    `UpstreamPoolExhausted`. A TLS handshake that does not complete within
    `connect_timeout` (TLS spoken to a plain-HTTP port) is an `UpstreamConnectError`.
    Call `aclose()` when done.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 600.0,
        max_keepalive: int = 100,
        max_connections: int = 1000,
        keepalive_expiry: float = 4.0,
        verify: bool = True,
    ) -> None:
        self.max_connections = max_connections
        self._open_by_origin: dict[_Origin, int] = {}
        self._waiters: dict[_Origin, list[asyncio.Future[None]]] = {}
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_keepalive, self.keepalive_expiry, self.verify = (
            max_keepalive,
            keepalive_expiry,
            verify,
        )
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set on first use
        self._origins: dict[str, _Origin] = {}
        self._idle_by_origin: dict[_Origin, list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def open_connections(self) -> int:
        return len(self._all)

    async def request(
        self,
        method: str,
        base: str,
        raw_path: bytes,
        query: bytes,
        headers: HeaderList,
        body: bytes,
        rest: AsyncIterator[bytes] | None = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        """Send a request to `base` + `raw_path` (+ `?query`); the answer's head is awaited.

        A streamed body is `body` followed by `rest` as it arrives, `length` bytes in all
        (None: unknown, sent in chunked transfer coding); it goes on a new connection, written
        while the answer is awaited. Raises `UpstreamError` when no answer comes
        (`RequestBodyError` when `rest` fails). A reused connection that the upstream had
        closed meanwhile (nothing received) is retried once on a new one.
        """
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        origin = self._origins.get(base)
        if origin is None:
            origin = self._origins[base] = _Origin.parse(base)
        target = origin.prefix + raw_path + (b"?" + query if query else b"")
        lines = [f"{method} ".encode() + target + b" HTTP/1.1", b"host: " + origin.host_header]
        lines.extend(name + b": " + value for name, value in headers)
        chunked = rest is not None and length is None
        if chunked:
            lines.append(b"transfer-encoding: chunked")
        elif body or rest is not None or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            size = len(body) if length is None else length
            lines.append(b"content-length: " + str(size).encode())
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        for attempt in (1, 2):
            # a streamed body cannot be sent twice: never on a connection the upstream may
            # have closed meanwhile
            reused = self._reuse(origin) if rest is None else None
            connection = reused or await self._new_connection(origin)
            response = connection.send(head, body, method == "HEAD", rest, chunked)
            assert connection.head is not None
            try:
                return await connection.head
            except UpstreamProtocolError:
                if attempt == 1 and connection.reused and not connection.received:
                    continue  # the upstream closed an idle keep-alive connection: retry fresh
                raise
            except BaseException:
                response.release()  # cancelled (the client left) or failed: close it
                raise
        raise AssertionError("unreachable")

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle_by_origin.get(origin)
        now = self.loop.time()
        while idle:
            connection = idle.pop()  # most recently used: least likely closed by the server
            if connection.closed:
                continue
            if now - connection.idle_since > self.keepalive_expiry:
                connection.close()
                continue
            connection.reused = True
            return connection
        return None

    async def _new_connection(self, origin: _Origin) -> _Connection:
        """A new connection, once the upstream has fewer than `max_connections` open (or an
        idle one that was freed meanwhile)."""
        deadline = self.loop.time() + self.connect_timeout
        while self._open_by_origin.get(origin, 0) >= self.max_connections:
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise UpstreamPoolExhausted(
                    f"all {self.max_connections} connections to the upstream stayed busy for"
                    f" {self.connect_timeout:g} s (max_connections)"
                )
            waiter: asyncio.Future[None] = self.loop.create_future()
            waiters = self._waiters.setdefault(origin, [])
            waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                continue
            finally:
                if waiter in waiters:
                    waiters.remove(waiter)
            reused = self._reuse(origin)
            if reused is not None:
                return reused
        self._open_by_origin[origin] = self._open_by_origin.get(origin, 0) + 1
        try:
            return await self._connect(origin)
        except BaseException:
            self._release_slot(origin)
            raise

    def _release_slot(self, origin: _Origin) -> None:
        self._open_by_origin[origin] = self._open_by_origin.get(origin, 1) - 1
        self._wake(origin)

    def _wake(self, origin: _Origin) -> None:
        """Let one request waiting for a connection to `origin` look again."""
        for waiter in self._waiters.get(origin, ()):
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, origin: _Origin) -> _Connection:
        tls = origin.scheme == "https"
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self, origin),
                    origin.host,
                    origin.port,
                    ssl=self._ssl_context() if tls else None,
                    server_hostname=origin.host if tls else None,
                    # a handshake that stalls (TLS to a plain-HTTP port) is a failure to
                    # connect, reported before the overall wait below gives up
                    ssl_handshake_timeout=self.connect_timeout * 0.9 if tls else None,
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            if tls:
                raise UpstreamConnectError(
                    f"no TLS connection within {self.connect_timeout:g} s"
                    " (is the upstream plain HTTP? then write http://)"
                ) from None
            raise UpstreamTimeout(f"no connection within {self.connect_timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            detail = str(exc) or type(exc).__name__
            if tls and isinstance(exc, (ssl.SSLError, ConnectionAbortedError)):
                detail = f"TLS failed (is the upstream plain HTTP? then write http://): {detail}"
            raise UpstreamConnectError(detail) from None
        self._all.add(protocol)
        return protocol

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            try:
                import certifi

                context.load_verify_locations(certifi.where())
            except ImportError:  # the system's CA store only
                pass
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def _idle(self, connection: _Connection) -> None:
        idle = self._idle_by_origin.setdefault(connection.origin, [])
        if len(idle) >= self.max_keepalive:
            connection.close()
            return
        connection.idle_since = self.loop.time()
        idle.append(connection)
        self._wake(connection.origin)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.keepalive_expiry, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections past their expiry (the oldest are first in each list)."""
        self._sweeper = None
        now = self.loop.time()
        for idle in self._idle_by_origin.values():
            while idle and now - idle[0].idle_since > self.keepalive_expiry:
                idle.pop(0).close()
        if any(self._idle_by_origin.values()):
            self._sweeper = self.loop.call_later(self.keepalive_expiry, self._sweep)

    def _forget(self, connection: _Connection) -> None:
        if connection in self._all:
            self._release_slot(connection.origin)
        self._all.discard(connection)
        idle = self._idle_by_origin.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)

    async def aclose(self) -> None:
        """Close every connection (idle or busy)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._all):
            connection.close()
        self._idle_by_origin.clear()
        if self._all:
            await asyncio.sleep(0)  # let the transports report their close


__all__ = [
    "Forwarder",
    "RequestBodyError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamPoolExhausted",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
]
