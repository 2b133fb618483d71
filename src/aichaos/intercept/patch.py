"""Process-wide interception: every httpx/httpx2 client asks us which transport to use.

Clients pick a transport per request with `_transport_for_url`; wrapping that
one method on `Client` and `AsyncClient` of each library covers every client in
the process, SDK default clients and custom transports (respx, MockTransport)
included, and leaves hosts no backend claims on their own transport.

httpx clients on an aiohttp transport (the SDKs' `DefaultAioHttpClient`), aiohttp
and requests go through the session's loopback listener instead (`sockets`), and
every other stack is stopped from reaching a claimed host (`guard`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aichaos.intercept import guard, sockets
from aichaos.intercept.backends import Router
from aichaos.intercept.flavors import Flavor, available_flavors
from aichaos.intercept.session import Session
from aichaos.intercept.sockets import Listener
from aichaos.intercept.transports import AsyncInterceptTransport, InterceptTransport

_lock = threading.RLock()
_sessions: list[Session] = []  # innermost last
_loopbacks: dict[int, Listener] = {}  # by id of the session
_listener: Callable[[Session], Listener] | None = None
_originals: dict[tuple[str, str], Callable[..., Any]] = {}
_guarded: Router | None = None  # the innermost session's hosts no stack may reach


def _active() -> Session | None:
    return _sessions[-1] if _sessions else None


def use_listener(factory: Callable[[Session], Listener]) -> None:
    """Set what serves aiohttp's and requests' claimed traffic: the proxy registers its
    loopback listener here (the proxy imports this module, so this one cannot import it)."""
    global _listener
    _listener = factory


def _active_loopback() -> tuple[Session, Listener] | None:
    session = _sessions[-1] if _sessions else None
    if session is None:
        return None
    listener = _loopbacks.get(id(session))
    if listener is None:
        raise RuntimeError(
            "aichaos: aiohttp and requests are intercepted through the proxy's loopback"
            " listener; use `aichaos.inject` (or import aichaos.proxy.loopback) to enable it"
        )
    return session, listener


def _on_own_socket(transport: Any) -> bool:
    """An httpx transport over aiohttp (httpx-aiohttp vendored by the SDKs, litellm's): aiohttp's
    own patch sends its requests to the listener."""
    return "aiohttp" in type(transport).__module__


def _make_patched(
    flavor: Flavor, original: Callable[..., Any], is_async: bool
) -> Callable[..., Any]:
    wrapper_cls = AsyncInterceptTransport if is_async else InterceptTransport

    def _transport_for_url(self: Any, url: Any) -> Any:
        transport = original(self, url)
        session = _active()
        if session is None or isinstance(transport, InterceptTransport):
            return transport
        backend = session.router.match(url.host, url.port, url.scheme)
        if backend is None or _on_own_socket(transport):
            return transport
        return wrapper_cls(session, backend, transport, flavor)

    return _transport_for_url


def _install() -> None:
    sockets.install(_active_loopback)
    guard.install(lambda: _guarded)
    for flavor in available_flavors():
        for cls_name, is_async in (("Client", False), ("AsyncClient", True)):
            cls = getattr(flavor.module, cls_name)
            original = cls._transport_for_url
            _originals[(flavor.name, cls_name)] = original
            cls._transport_for_url = _make_patched(flavor, original, is_async)


def _uninstall() -> None:
    sockets.uninstall()
    for flavor in available_flavors():
        for cls_name in ("Client", "AsyncClient"):
            original = _originals.pop((flavor.name, cls_name), None)
            if original is not None:
                getattr(flavor.module, cls_name)._transport_for_url = original


def push(session: Session) -> None:
    """Make `session` the active one (installing the patch if it is the first)."""
    global _guarded
    with _lock:
        if not _sessions:
            _install()
        if _listener is not None:
            _loopbacks[id(session)] = _listener(session)
        _sessions.append(session)
        _guarded = guard.guarded_router(session.router)


def pop(session: Session) -> None:
    """Deactivate `session`; the patch is removed with the last one."""
    global _guarded
    with _lock:
        if session in _sessions:
            _sessions.remove(session)
        loopback = _loopbacks.pop(id(session), None)
        _guarded = guard.guarded_router(_sessions[-1].router) if _sessions else None
        if not _sessions:
            _uninstall()
    if loopback is not None:
        loopback.close()


def is_installed() -> bool:
    return bool(_originals)
