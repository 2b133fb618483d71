"""One upstream HTTP/1.1 connection of the proxy's own client (`forwarding.Forwarder` pools
them): the request written in one go, the answer parsed by httptools (the C parser uvicorn
uses) and handed on chunk by chunk as it arrives, the read timeout over the upstream's
silence, flow control both ways. The errors name each failure for records and replies.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
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
class Origin:
    scheme: str
    host: str
    port: int
    host_header: bytes
    prefix: bytes  # the base URL's path, prepended to every request's path

    @classmethod
    def parse(cls, base: str) -> Origin:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base!r}")
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        header = shown if port == default else f"{shown}:{port}"
        return cls(parts.scheme, host, port, header.encode(), parts.path.rstrip("/").encode())


class Pool(Protocol):
    """What a connection needs from the pool that holds it (`forwarding.Forwarder`)."""

    loop: asyncio.AbstractEventLoop
    read_timeout: float | None

    def connection_idle(self, connection: UpstreamConnection) -> None:
        """`connection` answered in full and may carry another request."""

    def connection_closed(self, connection: UpstreamConnection) -> None:
        """`connection` is closed: it no longer counts against the upstream's limit."""


class UpstreamResponse:
    """An upstream answer: `status`, raw `headers`, the body as an async iterator of chunks.

    Call `release()` when done: a fully read answer returns its connection to the pool,
    an unfinished one closes it (which cancels the request upstream).
    """

    def __init__(self, connection: UpstreamConnection, head_only: bool) -> None:
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
            chunks = self._chunks
            if chunks:
                if len(chunks) == 1:
                    chunk = chunks.popleft()
                else:  # what arrived together goes on together: one step, one write
                    chunk = b"".join(chunks)
                    chunks.clear()
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


class UpstreamConnection(asyncio.Protocol):
    """One upstream connection carrying one request at a time."""

    def __init__(self, forwarder: Pool, origin: Origin) -> None:
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
        self.forwarder.connection_closed(self)
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
            self.forwarder.connection_idle(self)
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


__all__ = [
    "Origin",
    "Pool",
    "RequestBodyError",
    "UpstreamConnectError",
    "UpstreamConnection",
    "UpstreamError",
    "UpstreamPoolExhausted",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
]
