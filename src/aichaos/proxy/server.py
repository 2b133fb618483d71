"""Running the proxy on uvicorn: `serve_proxy` (async) and `serve_proxy_in_thread` (sync).

    async with serve_proxy(session, host="127.0.0.1", port=0) as proxy:
        proxy.base_url                 # "http://127.0.0.1:54321"
        proxy.backend_url("openai")    # "http://127.0.0.1:54321/openai"

The server runs in the caller's event loop (asyncio), leaves signal handling and
logging configuration to the host program, and binds its socket itself so a
busy port raises `OSError` instead of exiting the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from aichaos.intercept.session import Session
from aichaos.proxy.admin import PREFIX, AdminTokenError, check_admin_token, is_loopback
from aichaos.proxy.app import ProxyApp
from aichaos.proxy.body import DEFAULT_MAX_BODY, INSPECT_BODY
from aichaos.proxy.forwarding import Forwarder
from aichaos.proxy.stats import ProxyStats


class AdminExposedError(ValueError):
    """The proxy would serve its admin API beyond loopback without a token."""


@dataclass
class RunningProxy:
    """A proxy that is serving: where to reach it, and its app (stats, admin, session)."""

    app: ProxyApp
    host: str
    port: int

    @property
    def base_url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def backend_url(self, name: str) -> str:
        """The URL an app uses as a backend's base (append the provider's API path)."""
        if name not in self.app.session.backends:
            known = ", ".join(self.app.session.backends)
            raise KeyError(f"no backend {name!r}; backends: {known}")
        return f"{self.base_url}/{name}"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}{PREFIX}"

    @property
    def session(self) -> Session:
        return self.app.session

    @property
    def stats(self) -> ProxyStats:
        return self.app.stats


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the host program (runner, CLI) owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _QuietShutdown(logging.Filter):
    """Drops uvicorn's traceback for each exchange cancelled because the proxy stops (live
    streams, held connections): stopping is expected, the clients see their connection end."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


def check_admin_binding(host: str, *, admin: bool, admin_token: str | None) -> None:
    """Refuse to expose the admin API beyond loopback without a token, and unusable tokens."""
    try:
        check_admin_token(admin_token)
    except AdminTokenError as exc:
        raise AdminExposedError(str(exc)) from None
    if admin and admin_token is None and not is_loopback(host):
        raise AdminExposedError(
            f"binding the proxy to {host} exposes its admin API beyond loopback:"
            " give an admin token (--admin-token) or disable the admin API (--no-admin)"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (0: any free port); raises `OSError`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, _, _, address = infos[0]
    # proto=TCP: asyncio sets TCP_NODELAY on accepted sockets only when the listener says TCP
    sock = socket.socket(family, kind, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve_proxy(
    session: Session,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    admin: bool = True,
    admin_token: str | None = None,
    upstream_read_timeout: float | None = 600.0,
    shutdown_timeout: int = 1,
    middleware: Callable[[Any], Any] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    inspect_body: int = INSPECT_BODY,
    max_connections: int = 1000,
    header_timeout: float = 30.0,
) -> AsyncIterator[RunningProxy]:
    """Serve the chaos proxy for `session` until the block exits.

    Every attempt made through it is recorded in `session.recorder`; a request
    carrying `x-aichaos-call: ID` is attributed to call `ID`. On exit, exchanges
    still running after `shutdown_timeout` seconds (a hung fault, say) are cancelled.
    `middleware` wraps the ASGI app (in-process injection's loopback listener uses it).
    A request body longer than `inspect_body` bytes is streamed upstream as it arrives
    (see `ProxyApp`). Against hostile clients: a request body over `max_body` bytes gets a 413, a
    request head not complete `header_timeout` seconds after it began (or after the
    connection opened), or a body that pauses that long before its end, gets a 408 and the
    connection is closed; at most
    `max_connections` connections per upstream are open at once.
    Raises `AdminExposedError` when binding beyond loopback without `admin_token`,
    `OSError` when the address cannot be bound.
    """
    check_admin_binding(host, admin=admin, admin_token=admin_token)
    # connecting (TLS included) never takes longer than the silence allowed afterwards
    connect = min(10.0, upstream_read_timeout) if upstream_read_timeout else 10.0
    forwarder = Forwarder(
        connect_timeout=connect, read_timeout=upstream_read_timeout, max_connections=max_connections
    )
    app = ProxyApp(
        session,
        admin=admin,
        admin_token=admin_token,
        forwarder=forwarder,
        max_body=max_body,
        inspect_body=inspect_body,
    )
    sock = bind_socket(host, port)
    config = uvicorn.Config(
        app if middleware is None else middleware(app),
        http=app.connections.tracking_protocol(AutoHTTPProtocol, header_timeout),
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,  # access lines carry query strings, where some keys travel
        server_header=False,  # the upstream's own headers pass unchanged
        date_header=False,
        proxy_headers=False,  # keep scope["client"] = the socket's peer (connections)
        timeout_keep_alive=75,  # longer than clients' pools keep idle connections
        timeout_graceful_shutdown=shutdown_timeout,
    )
    server = _Server(config)
    quiet = _QuietShutdown()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the proxy server stopped while starting")
            await asyncio.sleep(0.005)
        running = RunningProxy(app, host, sock.getsockname()[1])
        if app.admin is not None:
            app.admin.base_url = running.base_url
        yield running
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()
        await app.aclose()
        logging.getLogger("uvicorn.error").removeFilter(quiet)


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc `malloc_trim`).

    After a burst of connections a Python process keeps its peak size: freed memory
    stays in the allocator. A long-running proxy calls this once traffic stops.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


async def release_memory_when_idle(stats: ProxyStats, stop: asyncio.Event, every: float) -> None:
    """Every `every` seconds, release memory if requests came and none is in flight."""
    seen = -1
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        total = sum(b.requests for b in stats.backends.values())
        if total != seen and stats.inflight == 0:
            seen = total
            release_memory()


@contextlib.contextmanager
def serve_proxy_in_thread(
    session: Session, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Iterator[RunningProxy]:
    """`serve_proxy` on its own event loop in a background thread, for synchronous code."""
    ready: list[RunningProxy | BaseException] = []
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["stop"], state["loop"] = stop, asyncio.get_running_loop()
        try:
            async with serve_proxy(session, host, port, **options) as proxy:
                ready.append(proxy)
                started.set()
                await stop.wait()
        except BaseException as exc:
            ready.append(exc)
            started.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="aichaos-proxy", daemon=True)
    thread.start()
    started.wait()
    outcome = ready[0]
    if isinstance(outcome, BaseException):
        thread.join()
        raise outcome
    try:
        yield outcome
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join()


__all__ = [
    "AdminExposedError",
    "RunningProxy",
    "bind_socket",
    "check_admin_binding",
    "release_memory",
    "release_memory_when_idle",
    "serve_proxy",
    "serve_proxy_in_thread",
]
