"""Forwarding to real upstreams: a lean HTTP/1.1 client with a keep-alive pool, raw bytes.

Why not `httpx.AsyncClient`: the proxy sits on every request's hot path. Forwarding with
httpx costs 15-23x the CPU per request of this client on the same server (measured by
benchmarks/hotpaths.py, see docs/performance.md): its pool (httpcore 1.0) probes every
pooled connection's socket for every request it places, and h11, anyio streams and the
client's defaults add the rest; a client also adds what a
transparent proxy must not: default headers, a cookie jar fed by upstream `set-cookie`,
decoding of compressed bodies. This module is the client's pool (idle connections reused
most-recent first, a cap per upstream, TLS for `https` upstreams); each connection is an
`asyncio.Protocol` around the C parser uvicorn uses (`httptools`, see `upstream`): one
write per request, bodies handed on chunk by chunk as they arrive.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

from aichaos.proxy.headers import HeaderList
from aichaos.proxy.upstream import (
    Origin,
    RequestBodyError,
    UpstreamConnectError,
    UpstreamConnection,
    UpstreamError,
    UpstreamPoolExhausted,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
)


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
        self._open_by_origin: dict[Origin, int] = {}
        self._waiters: dict[Origin, list[asyncio.Future[None]]] = {}
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_keepalive, self.keepalive_expiry, self.verify = (
            max_keepalive,
            keepalive_expiry,
            verify,
        )
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set on first use
        self._origins: dict[str, Origin] = {}
        self._idle_by_origin: dict[Origin, list[UpstreamConnection]] = {}
        self._all: set[UpstreamConnection] = set()
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
            origin = self._origins[base] = Origin.parse(base)
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

    def _reuse(self, origin: Origin) -> UpstreamConnection | None:
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

    async def _new_connection(self, origin: Origin) -> UpstreamConnection:
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

    def _release_slot(self, origin: Origin) -> None:
        self._open_by_origin[origin] = self._open_by_origin.get(origin, 1) - 1
        self._wake(origin)

    def _wake(self, origin: Origin) -> None:
        """Let one request waiting for a connection to `origin` look again."""
        for waiter in self._waiters.get(origin, ()):
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, origin: Origin) -> UpstreamConnection:
        tls = origin.scheme == "https"
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: UpstreamConnection(self, origin),
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

    def connection_idle(self, connection: UpstreamConnection) -> None:
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

    def connection_closed(self, connection: UpstreamConnection) -> None:
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
