"""Reaching a client's TCP connection from inside the ASGI app, to drop it for real.

ASGI gives an application no handle on the socket: raising before the response
starts makes uvicorn answer 500, and raising after it logs a traceback. A proxy
that fakes `connection_reset` must instead close the connection itself, at any
point, without a response and without noise.

uvicorn accepts a protocol class (`uvicorn.Config(http=...)`). `tracking_protocol`
subclasses the one uvicorn would pick and overrides only the asyncio `Protocol`
callbacks `connection_made` / `connection_lost` (public asyncio API) to keep a
map from the peer address to the transport. uvicorn computes `scope["client"]`
with the same `get_remote_addr(transport)`, so the app finds its connection by
`scope["client"]` (`proxy_headers` must be off, or uvicorn rewrites `client`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.utils import get_remote_addr

Peer = tuple[str, int]


class ConnectionRegistry:
    """The open client connections of one server, by peer address."""

    def __init__(self) -> None:
        self._by_peer: dict[Peer, asyncio.Transport] = {}

    def __len__(self) -> int:
        return len(self._by_peer)

    def transport_for(self, client: Any) -> asyncio.Transport | None:
        """The transport of the connection `scope["client"]` names, if this registry tracks it."""
        if not client:
            return None
        return self._by_peer.get((str(client[0]), int(client[1])))

    def tracking_protocol(
        self, base: type[asyncio.Protocol], header_timeout: float | None = None
    ) -> type[asyncio.Protocol]:
        """A subclass of uvicorn's HTTP protocol `base` that registers its connections here.

        With `header_timeout`, a request head must be complete that many seconds after the
        connection opens or the head begins, else the client gets a 408 and the connection
        is closed: half-sent requests (slowloris) cannot hold connections forever. uvicorn's
        own keep-alive timeout covers idle connections between requests.
        """
        registry = self

        def arm(self: Any) -> None:
            if header_timeout is not None and getattr(self, "_aichaos_head_timer", None) is None:
                loop = asyncio.get_running_loop()
                self._aichaos_head_timer = loop.call_later(header_timeout, head_late, self)

        def disarm(self: Any) -> None:
            timer = getattr(self, "_aichaos_head_timer", None)
            if timer is not None:
                timer.cancel()
                self._aichaos_head_timer = None

        def head_late(self: Any) -> None:
            self._aichaos_head_timer = None
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.write(_REQUEST_TIMEOUT)
                transport.close()

        def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
            base.connection_made(self, transport)
            peer = get_remote_addr(transport)  # type: ignore[arg-type]
            self._aichaos_peer = peer
            if peer is not None:
                registry._by_peer[peer] = transport  # type: ignore[assignment]
            arm(self)

        def connection_lost(self: Any, exc: Exception | None) -> None:
            disarm(self)
            peer = getattr(self, "_aichaos_peer", None)
            if peer is not None and registry._by_peer.get(peer) is self.transport:
                del registry._by_peer[peer]
            base.connection_lost(self, exc)

        methods: dict[str, Any] = {
            "connection_made": connection_made,
            "connection_lost": connection_lost,
        }
        # httptools' parser callbacks (uvicorn's default protocol): the head's start and end
        begin, complete = (
            getattr(base, "on_message_begin", None),
            getattr(base, "on_headers_complete", None),
        )
        if header_timeout is not None and begin is not None and complete is not None:

            def on_message_begin(self: Any) -> None:
                arm(self)
                begin(self)

            def on_headers_complete(self: Any) -> None:
                disarm(self)
                complete(self)

            methods.update(
                on_message_begin=on_message_begin, on_headers_complete=on_headers_complete
            )
        return type(f"Tracking{base.__name__}", (base,), methods)


_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 32\r\n"
    b"connection: close\r\n\r\nthe request head came too slowly"
)


__all__ = ["ConnectionRegistry"]
