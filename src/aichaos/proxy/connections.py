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

The protocol is handed a `ClientConnection` in place of its transport, so the app can also
be told when the connection is lost (no task per request waiting for `http.disconnect`)
and can send a response's head and body in one write (`hold` / `release`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.utils import get_remote_addr

Peer = tuple[str, int]


class ClientConnection:
    """A client connection's transport as its server protocol sees it (every call passed on),
    plus `on_lost` (called once the connection is gone) and writes held to go out as one."""

    __slots__ = ("_held", "on_lost", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.on_lost: Callable[[], None] | None = None
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            self.transport.write(data)

    def hold(self) -> None:
        """Keep writes back until `release`, which sends them in one write (one send call)."""
        self._held = []

    def release(self) -> None:
        held, self._held = self._held, None
        if held:
            self.transport.write(b"".join(held))

    # the transport methods the protocol calls on every request, without __getattr__
    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.release()
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class ConnectionRegistry:
    """The open client connections of one server, by peer address."""

    def __init__(self) -> None:
        self._by_peer: dict[Peer, ClientConnection] = {}

    def __len__(self) -> int:
        return len(self._by_peer)

    def transport_for(self, client: Any) -> ClientConnection | None:
        """The connection `scope["client"]` names, if this registry tracks it."""
        if not client:
            return None
        return self._by_peer.get((str(client[0]), int(client[1])))

    def tracking_protocol(
        self, base: type[asyncio.Protocol], header_timeout: float | None = None
    ) -> type[asyncio.Protocol]:
        """A subclass of uvicorn's HTTP protocol `base` that registers its connections here.

        With `header_timeout`, a request head must be complete that many seconds after the
        connection opens or the head begins, and its body may not pause that long before its
        end, else the client gets a 408 and the connection is closed: half-sent requests
        (slowloris, heads or bodies) cannot hold connections forever. A pause while the server
        itself stopped reading (flow control: the app, or a slow upstream, has not taken the
        body yet) does not count. uvicorn's own keep-alive timeout covers idle connections
        between requests.
        """
        registry = self

        # One timer per connection, not per request: it fires `header_timeout` after the
        # oldest unfinished head began and waits again for what is left of a newer one.
        # The state lives on the protocol (set in connection_made): plain attribute reads on
        # every request, no getattr defaults; `self.loop` is uvicorn's protocol's own loop.
        def arm(self: Any) -> None:  # a request head begins (or the connection opened)
            if header_timeout is None:
                return
            if self._aichaos_head_since is None:
                self._aichaos_head_since = self.loop.time()
            if self._aichaos_head_timer is None:
                self._aichaos_head_timer = self.loop.call_later(header_timeout, head_late, self)

        def disarm(self: Any) -> None:  # the request is complete (head and body)
            self._aichaos_head_since = None
            self._aichaos_in_body = False

        def progress(self: Any) -> None:  # the head is complete, or body bytes came
            if self._aichaos_head_since is not None:
                self._aichaos_head_since = self.loop.time()

        def head_late(self: Any) -> None:
            self._aichaos_head_timer = None
            since = getattr(self, "_aichaos_head_since", None)
            if since is None or header_timeout is None:
                return  # no head in progress: the next one arms the timer again
            loop = asyncio.get_running_loop()
            flow = getattr(self, "flow", None)
            if flow is not None and flow.read_paused:  # the server is the slow one: not a stall
                since = self._aichaos_head_since = loop.time()
            left = since + header_timeout - loop.time()
            if left > 0:
                self._aichaos_head_timer = loop.call_later(left, head_late, self)
                return
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                in_body = getattr(self, "_aichaos_in_body", False)
                cycle = getattr(self, "cycle", None)
                if not (in_body and cycle is not None and cycle.response_started):
                    transport.write(_BODY_TIMEOUT if in_body else _REQUEST_TIMEOUT)
                transport.close()  # the app sees the client leave

        def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
            self._aichaos_head_since = self._aichaos_head_timer = None
            self._aichaos_in_body = False
            connection = ClientConnection(transport)  # type: ignore[arg-type]
            base.connection_made(self, connection)  # type: ignore[arg-type]  # a transport to it
            peer = get_remote_addr(transport)  # type: ignore[arg-type]
            self._aichaos_peer = peer
            self._aichaos_connection = connection
            if peer is not None:
                registry._by_peer[peer] = connection
            arm(self)

        def connection_lost(self: Any, exc: Exception | None) -> None:
            disarm(self)
            timer = getattr(self, "_aichaos_head_timer", None)
            if timer is not None:
                timer.cancel()
                self._aichaos_head_timer = None
            peer = getattr(self, "_aichaos_peer", None)
            connection = getattr(self, "_aichaos_connection", None)
            if peer is not None and registry._by_peer.get(peer) is connection:
                del registry._by_peer[peer]
            base.connection_lost(self, exc)
            if connection is not None and connection.on_lost is not None:
                on_lost, connection.on_lost = connection.on_lost, None
                on_lost()

        methods: dict[str, Any] = {
            "connection_made": connection_made,
            "connection_lost": connection_lost,
        }
        # httptools' parser callbacks (uvicorn's default protocol): the head's start and end
        begin, headers_done, body, done = (
            getattr(base, "on_message_begin", None),
            getattr(base, "on_headers_complete", None),
            getattr(base, "on_body", None),
            getattr(base, "on_message_complete", None),
        )
        if header_timeout is not None and None not in (begin, headers_done, body, done):
            assert begin and headers_done and body and done  # for mypy

            def on_message_begin(self: Any) -> None:
                arm(self)
                begin(self)

            def on_headers_complete(self: Any) -> None:
                progress(self)  # the body (if any) has its own pause limit from now on
                self._aichaos_in_body = True
                headers_done(self)

            def on_body(self: Any, data: bytes) -> None:
                progress(self)  # one clock read per chunk: no timer per request
                body(self, data)

            def on_message_complete(self: Any) -> None:
                disarm(self)
                done(self)

            methods.update(
                on_message_begin=on_message_begin,
                on_headers_complete=on_headers_complete,
                on_body=on_body,
                on_message_complete=on_message_complete,
            )
        return type(f"Tracking{base.__name__}", (base,), methods)


_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 32\r\n"
    b"connection: close\r\n\r\nthe request head came too slowly"
)
_BODY_TIMEOUT = _REQUEST_TIMEOUT.replace(b"head came", b"body came")  # the same length


__all__ = ["ClientConnection", "ConnectionRegistry"]
