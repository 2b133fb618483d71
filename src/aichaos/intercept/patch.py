"""Process-wide interception: every httpx/httpx2 client asks us which transport to use.

Clients pick a transport per request with `_transport_for_url`; wrapping that
one method on `Client` and `AsyncClient` of each library covers every client in
the process, SDK default clients and custom transports (respx, MockTransport)
included, and leaves hosts no backend claims on their own transport.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aichaos.intercept.flavors import Flavor, available_flavors
from aichaos.intercept.session import Session
from aichaos.intercept.transports import AsyncInterceptTransport, InterceptTransport

_lock = threading.RLock()
_sessions: list[Session] = []  # innermost last
_originals: dict[tuple[str, str], Callable[..., Any]] = {}


def _active() -> Session | None:
    return _sessions[-1] if _sessions else None


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
        if backend is None:
            return transport
        return wrapper_cls(session, backend, transport, flavor)

    return _transport_for_url


def _install() -> None:
    for flavor in available_flavors():
        for cls_name, is_async in (("Client", False), ("AsyncClient", True)):
            cls = getattr(flavor.module, cls_name)
            original = cls._transport_for_url
            _originals[(flavor.name, cls_name)] = original
            cls._transport_for_url = _make_patched(flavor, original, is_async)


def _uninstall() -> None:
    for flavor in available_flavors():
        for cls_name in ("Client", "AsyncClient"):
            original = _originals.pop((flavor.name, cls_name), None)
            if original is not None:
                getattr(flavor.module, cls_name)._transport_for_url = original


def push(session: Session) -> None:
    """Make `session` the active one (installing the patch if it is the first)."""
    with _lock:
        if not _sessions:
            _install()
        _sessions.append(session)


def pop(session: Session) -> None:
    """Deactivate `session`; the patch is removed with the last one."""
    with _lock:
        if session in _sessions:
            _sessions.remove(session)
        if not _sessions:
            _uninstall()


def is_installed() -> bool:
    return bool(_originals)
