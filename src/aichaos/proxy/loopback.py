"""The chaos proxy on 127.0.0.1 for one `inject()`, for clients that must fail on a real socket.

Clients whose connection errors aichaos cannot name faithfully from inside (aiohttp and
requests, and the httpx adapters built on aiohttp) send a claimed backend's traffic here
instead (`aichaos.intercept.sockets`): `http://127.0.0.1:PORT/<backend><path>`. The
listener is the proxy app itself, on uvicorn in a background thread, started on first
use and stopped with the injection, so resets, refusals and hangs happen on the
client's own socket and it raises what it raises in production.

Context variables do not cross a socket: the client's patch puts a token for the
current call scope in `x-aichaos-scope`, and the listener's middleware strips it and
runs the exchange in that very scope (so `CallScope.attempts` fills as in-process).

In-process injection sits below the proxy, so it cannot import this module: importing
it registers `Loopback` with `aichaos.intercept.patch` (`aichaos.inject`, the pytest
plugin and the experiment runner do).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aichaos.intercept import patch
from aichaos.intercept.session import Session
from aichaos.intercept.sockets import SCOPE_HEADER, scope_for
from aichaos.proxy.server import serve_proxy_in_thread
from aichaos.records import CURRENT_CALL

_SCOPE_HEADER_RAW = SCOPE_HEADER.encode()

Asgi = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def with_call_scopes(app: Asgi) -> Asgi:
    """ASGI middleware: run each request in the call scope its `SCOPE_HEADER` names."""

    async def middleware(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
            token = next((v for k, v in headers if k == _SCOPE_HEADER_RAW), None)
            if token is not None:
                scope["headers"] = [(k, v) for k, v in headers if k != _SCOPE_HEADER_RAW]
                CURRENT_CALL.set(scope_for(token.decode("latin-1")))  # this request's task
        await app(scope, receive, send)

    return middleware


class Loopback:
    """The listener of one session: started on first `port()`, stopped by `close()`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None
        self._port: int | None = None

    def port(self) -> int:
        """The listener's port on 127.0.0.1 (starting it takes a few milliseconds)."""
        port = self._port
        if port is not None:
            return port
        with self._lock:
            if self._port is None:
                stack = contextlib.ExitStack()
                running = stack.enter_context(
                    serve_proxy_in_thread(
                        self.session, "127.0.0.1", 0, admin=False, middleware=with_call_scopes
                    )
                )
                self._stack, self._port = stack, running.port
            return self._port

    @property
    def started(self) -> bool:
        return self._port is not None

    def close(self) -> None:
        """Stop the listener (exchanges still running after a second are cancelled)."""
        with self._lock:
            stack, self._stack, self._port = self._stack, None, None
        if stack is not None:
            stack.close()


patch.use_listener(Loopback)
