"""The client's side of one proxied exchange: the answer as it goes out (head held to go out
with the first body bytes), the client's disconnect (cancels the exchange), and dropping its
connection for a connection fault (see `connections`)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from aichaos.proxy.body import RequestBody
from aichaos.proxy.connections import ConnectionRegistry
from aichaos.wire.asgi import Message, Receive, Scope, Send


class Downstream:
    """The client's side of one exchange: the answer, its disconnect, dropping its connection."""

    __slots__ = (
        "_watcher",
        "complete",
        "connection",
        "dropped",
        "gone",
        "head",
        "holding",
        "receive",
        "send",
        "unsupported_drop",
    )

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, connections: ConnectionRegistry
    ) -> None:
        self.receive, self.send = receive, send
        self.connection = connections.transport_for(scope.get("client"))
        self.head: Message | None = None  # the status line and headers, not sent yet
        self.complete = False  # the whole answer went out
        self.gone = False  # the client disconnected (or the proxy dropped it)
        self.dropped = False  # the proxy dropped the connection on purpose
        self.holding = False  # a hang is in progress: a disconnect now is the client timing out
        self.unsupported_drop = False  # not served by serve_proxy: let the server close it
        self._watcher: asyncio.Future[None] | None = None

    def watch(self, exchange: asyncio.Task[Any], body: RequestBody) -> None:
        """Cancel the exchange (and its upstream request) when the client goes away (once its
        body is read: the reader of a streamed body notices a disconnect before): told by the
        connection itself when `serve_proxy` tracks it, else by `http.disconnect`."""
        if self.connection is not None:
            self.connection.on_lost = functools.partial(self._lost, exchange, body)
        else:
            self._watcher = asyncio.ensure_future(self._watch(exchange, body))

    def unwatch(self) -> None:
        if self.connection is not None:
            self.connection.on_lost = None
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self, exchange: asyncio.Task[Any], body: RequestBody) -> None:
        if not await body.finished():
            return
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self._lost(exchange, body)

    def _lost(self, exchange: asyncio.Task[Any], body: RequestBody) -> None:
        if not body.outcome:
            return  # the body is still being read, and its reader sees the client leave
        if not self.complete:
            self.gone = True
            exchange.cancel()

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Keep the head to go out with the body's first bytes (`flush` sends it alone)."""
        self.head = {"type": "http.response.start", "status": status, "headers": headers}

    async def flush(self) -> None:
        if self.head is not None:
            head, self.head = self.head, None
            await self.send(head)

    async def body(self, data: bytes, last: bool) -> None:
        self.complete = last
        message = {"type": "http.response.body", "body": data, "more_body": not last}
        head, connection = self.head, self.connection
        if head is None:
            await self.send(message)
            return
        self.head = None
        if connection is not None:
            connection.hold()  # head and bytes in one write: one send call, one packet
        try:
            await self.send(head)
            await self.send(message)
        finally:
            if connection is not None:
                connection.release()

    async def end(self) -> None:
        if not self.complete:
            await self.body(b"", True)

    async def drop(self) -> None:
        """Close the client's TCP connection now, with whatever was sent so far.

        A graceful close (FIN after the bytes already written), as when the peer
        process dies: before any response the client sees "server disconnected
        without sending a response", mid-body an incomplete body. Returns only in
        the unsupported case; otherwise the disconnect cancels the exchange.
        """
        self.dropped = True
        transport = self.connection
        if transport is None:
            self.unsupported_drop = True
            return
        transport.close()
        await asyncio.sleep(1.0)  # the watcher sees the disconnect and cancels us
        transport.abort()  # the client stopped reading: close() could wait forever to flush
        await asyncio.sleep(1.0)


__all__ = ["Downstream"]
