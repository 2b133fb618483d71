"""A client's request body as it arrives: counted against the proxy's limit, inspected up to a
small limit, the rest handed on chunk by chunk (see docs/proxy.md, "Request bodies").

Why: a proxy that buffers whole bodies holds a 300 MB upload three times over. The faults,
attribution, recording and the mock need the body only to read a few fields (model, stream,
the prompt) or to keep it: almost every LLM request fits in the inspection limit and is read
whole as before; a larger one is streamed upstream unless something needs all of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

from aichaos.wire.asgi import Receive

DEFAULT_MAX_BODY = 64 * 1024 * 1024
"""Largest request body forwarded (bytes): above every provider's own request limit."""
INSPECT_BODY = 1024 * 1024
"""Bytes of a request body read before its exchange begins (what faults, attribution and the
records see of a larger body that is streamed)."""


class BodyTooLarge(Exception):
    """The request body is over the proxy's limit."""


class ClientGone(Exception):
    """The client left before sending its whole body."""


def declared_length(raw: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The request's `content-length`, or None (chunked, or not a number)."""
    for name, value in raw:
        if name.lower() == b"content-length":
            return length_value(value)
    return None


def length_value(value: bytes) -> int | None:
    """A `content-length` value as a number, or None (not a number)."""
    try:
        return int(value)
    except ValueError:
        return None


class RequestBody:
    """The body of one request, read from ASGI `receive` and counted against `limit` bytes.

    `head(n)` reads until the end or until at least `n` bytes came; `rest()` yields what
    follows as it arrives, for streaming upstream. Both raise `BodyTooLarge` as soon as more
    than `limit` bytes came (nothing more is read), and `rest()` raises `ClientGone` when the
    client disconnects first (`head` returns None then). `on_end(ok)` is called once when the
    body ends: ok True at its end, False on a disconnect or the limit; `outcome` is that `ok`
    (None while the body is still coming), and `finished()` waits for it.
    """

    def __init__(
        self, receive: Receive, limit: int, on_end: Callable[[bool], None] | None = None
    ) -> None:
        self.receive, self.limit, self.on_end = receive, limit, on_end
        self.size = 0
        self.ended = False  # the whole body was read
        self.gone = False  # the client disconnected before its end
        self.outcome: bool | None = None
        self._finished: asyncio.Future[bool] | None = None

    async def _next(self) -> bytes | None:
        """The next non-empty chunk; None at the end (or when the client left: see `gone`)."""
        while not self.ended:
            message = await self.receive()
            if message["type"] != "http.request":
                self.gone = True
                self._end(False)
                return None
            chunk: bytes = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.limit:
                self._end(False)
                raise BodyTooLarge
            if not message.get("more_body", False):
                self.ended = True
                self._end(True)
            if chunk:
                return chunk
        return None

    def _end(self, ok: bool) -> None:
        if self.outcome is not None:
            return
        self.outcome = ok
        if self.on_end is not None:
            on_end, self.on_end = self.on_end, None
            on_end(ok)
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(ok)

    async def finished(self) -> bool:
        """Whether the body was read to its end (False: the client left, or the limit)."""
        if self.outcome is None:
            self._finished = asyncio.get_running_loop().create_future()
            return await self._finished
        return self.outcome

    async def head(self, size: int, before: bytes = b"") -> bytes | None:
        """`before`, then the body's next `size` bytes or more (all of it when it is shorter):
        None when the client left first."""
        chunks: list[bytes] = [before] if before else []
        read = 0
        while read < size and (chunk := await self._next()) is not None:
            chunks.append(chunk)
            read += len(chunk)
        return None if self.gone else b"".join(chunks)

    async def all(self, before: bytes = b"") -> bytes | None:
        """`before` and the rest of the body, whole (None when the client left first)."""
        return await self.head(self.limit + 1, before)

    async def rest(self) -> AsyncIterator[bytes]:
        """The rest of the body as it arrives."""
        while (chunk := await self._next()) is not None:
            yield chunk
        if self.gone:
            raise ClientGone


__all__ = [
    "DEFAULT_MAX_BODY",
    "INSPECT_BODY",
    "BodyTooLarge",
    "ClientGone",
    "RequestBody",
    "declared_length",
    "length_value",
]
