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

    def tracking_protocol(self, base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """A subclass of uvicorn's HTTP protocol `base` that registers its connections here."""
        registry = self

        def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
            base.connection_made(self, transport)
            peer = get_remote_addr(transport)  # type: ignore[arg-type]
            self._aichaos_peer = peer
            if peer is not None:
                registry._by_peer[peer] = transport  # type: ignore[assignment]

        def connection_lost(self: Any, exc: Exception | None) -> None:
            peer = getattr(self, "_aichaos_peer", None)
            if peer is not None and registry._by_peer.get(peer) is self.transport:
                del registry._by_peer[peer]
            base.connection_lost(self, exc)

        return type(
            f"Tracking{base.__name__}",
            (base,),
            {"connection_made": connection_made, "connection_lost": connection_lost},
        )


__all__ = ["ConnectionRegistry"]
