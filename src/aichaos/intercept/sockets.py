"""aiohttp and requests: a claimed backend's requests go to the session's loopback listener.

Both libraries name connection failures from their own socket (aiohttp's
`ServerDisconnectedError`, requests' `ConnectionError`, the timeouts of each), and
the SDKs built on them map those names further (openai's aiohttp adapter turns a
dropped connection into `APITimeoutError`). Rather than imitate that from inside,
their requests to a claimed host are re-addressed to the session's loopback listener
(`aichaos.proxy.loopback`), which plays every fault on a real socket.

aiohttp: `ClientSession._request` (every verb, `request()`, and google-genai's and
the SDKs' aiohttp transports go through it). requests: `HTTPAdapter.send` (every
`Session`, `requests.post` included). Redirects inside aiohttp's own loop are not
re-addressed; the resolver guard stops them from reaching a claimed host.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from aichaos.intercept.session import Session
from aichaos.records import CURRENT_CALL, CallScope

SCOPE_HEADER = "x-aichaos-scope"
"""Carries the app's call scope from a patched client to the listener; never forwarded."""

_scopes: weakref.WeakValueDictionary[str, CallScope] = weakref.WeakValueDictionary()


def scope_token() -> str | None:
    """A token for the current call scope (None outside any), to send in `SCOPE_HEADER`."""
    scope = CURRENT_CALL.get()
    if scope is None:
        return None
    token = f"{id(scope):x}"
    _scopes[token] = scope
    return token


def scope_for(token: str) -> CallScope | None:
    """The live call scope a token names (None once it is gone)."""
    return _scopes.get(token)


class Listener(Protocol):
    """A loopback listener serving one session (`aichaos.proxy.loopback.Loopback`)."""

    @property
    def started(self) -> bool: ...

    def port(self) -> int: ...

    def close(self) -> None: ...


Active = Callable[[], tuple[Session, Listener] | None]
"""Returns the innermost active session and its listener, or None."""


def _route(active: Active, url: str) -> tuple[Listener, str, str | None] | None:
    """(listener, path on the listener, call-scope token) for a claimed URL, else None."""
    current = active()
    if current is None:
        return None
    session, loopback = current
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    backend = session.router.match(parts.hostname, parts.port, parts.scheme)
    if backend is None:
        return None
    path = parts.path or "/"
    spec = session.backends[backend]
    prefix = urlsplit(spec.upstream).path if spec.is_remote else ""
    if prefix and path.startswith(prefix + "/"):  # the listener puts the upstream's path back
        path = path[len(prefix) :]
    query = f"?{parts.query}" if parts.query else ""
    return loopback, f"/{backend}{path}{query}", scope_token()


# --- aiohttp ---------------------------------------------------------------------------


def _patch_aiohttp(active: Active, original: Callable[..., Any]) -> Callable[..., Any]:
    import asyncio

    from multidict import CIMultiDict

    async def _request(self: Any, method: str, str_or_url: Any, **kwargs: Any) -> Any:
        url = self._build_url(str_or_url)
        route = _route(active, str(url)) if url.absolute else None
        if route is None:
            return await original(self, method, str_or_url, **kwargs)
        loopback, target, token = route
        port = loopback.started and loopback.port()
        if not port:  # starting the listener blocks briefly: not on the event loop
            port = await asyncio.get_running_loop().run_in_executor(None, loopback.port)
        headers = CIMultiDict(kwargs.get("headers") or {})
        if token is not None:
            headers[SCOPE_HEADER] = token
        kwargs["headers"] = headers
        kwargs.pop("server_hostname", None)  # plain HTTP to the listener: no TLS, no SNI
        listener = type(url)(f"http://127.0.0.1:{port}{target}", encoded=True)
        return await original(self, method, listener, **kwargs)

    return _request


# --- requests --------------------------------------------------------------------------


def _patch_requests(active: Active, original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        route = _route(active, request.url)
        if route is None:
            return original(self, request, *args, **kwargs)
        loopback, target, token = route
        outgoing = request.copy()
        outgoing.url = f"http://127.0.0.1:{loopback.port()}{target}"
        if token is not None:
            outgoing.headers[SCOPE_HEADER] = token
        if len(args) >= 5:  # proxies passed positionally: never for the listener
            args = (*args[:4], {}, *args[5:])
        else:
            kwargs["proxies"] = {}
        response = original(self, outgoing, *args, **kwargs)
        response.url, response.request = request.url, request  # as the app asked
        return response

    return send


_TARGETS: dict[str, tuple[str, str, Callable[[Active, Callable[..., Any]], Callable[..., Any]]]] = {
    "aiohttp": ("aiohttp.client", "ClientSession._request", _patch_aiohttp),
    "requests": ("requests.adapters", "HTTPAdapter.send", _patch_requests),
}
_originals: dict[str, tuple[type, str, Callable[..., Any]]] = {}


def install(active: Active) -> None:
    """Re-address claimed requests of every installed library among aiohttp and requests."""
    for name, (module_name, attribute, factory) in _TARGETS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls_name, method = attribute.split(".")
        cls = getattr(module, cls_name)
        original = cls.__dict__[method]
        _originals[name] = (cls, method, original)
        setattr(cls, method, factory(active, original))


def uninstall() -> None:
    while _originals:
        _, (cls, method, original) = _originals.popitem()
        setattr(cls, method, original)
