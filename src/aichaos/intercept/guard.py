"""Fail closed: inside `inject()`, no other HTTP stack reaches a claimed provider host.

A Python audit hook (PEP 578) sees every host name the process resolves or
connects to by name (`socket.getaddrinfo`, `gethostbyname`, `connect` with a
host name), whatever library asked: urllib, http.client, a raw socket, pycurl's
Python callers, a thread pool. When the name is claimed by a backend that
aichaos serves itself (the mock, or an upstream elsewhere), the hook raises
`UncoveredClientError` before any packet leaves: the app's real key never
reaches the real provider.

Not detectable: a C library that resolves names itself (libcurl inside pycurl,
gRPC, aiodns/c-ares: their look-ups bypass Python), a connection to an IP
address, and anything in another process. A backend whose real upstream *is*
its claimed host is not guarded: aichaos's own upstream requests resolve that name.

The hook is installed once, on the first `inject()`; outside an injection it
returns at once (audit hooks cannot be removed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from aichaos.intercept.backends import Router

_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.connect"})
_installed = False
_routers: Callable[[], Router | None] = lambda: None  # noqa: E731  (set by `install`)


class UncoveredClientError(RuntimeError):
    """A request to a claimed provider host came from an HTTP stack aichaos does not cover."""


def guarded_router(router: Router) -> Router:
    """The part of `router` to guard: backends that aichaos itself never connects to."""
    kept = {n: s for n, s in router.backends.items() if not s.reaches_claimed_host}
    return router if len(kept) == len(router.backends) else Router(kept)


def _target(event: str, args: tuple[Any, ...]) -> tuple[Any, Any]:
    if event == "socket.connect":
        address = args[1]
        return (address[0], address[1]) if isinstance(address, tuple) else (None, None)
    if event == "socket.gethostbyname":
        return args[0], None
    return args[0], args[1]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS:
        return
    router = _routers()
    if router is None:
        return
    host, port = _target(event, args)
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return
    try:
        number = int(port) if port is not None else None
    except (TypeError, ValueError):  # a service name: "https"
        number = 443 if port == "https" else 80 if port == "http" else None
    host = host.rstrip(".")
    backend = router.match(host, number, "https" if number != 80 else "http")
    if backend is None:
        return
    raise UncoveredClientError(
        f"aichaos.inject(): a connection to {host} (claimed by backend {backend!r}) was"
        " opened by an HTTP stack aichaos does not intercept, and stopped before it reached"
        " the network. Send this request with httpx, httpx2, requests or aiohttp (or an SDK"
        " on them), or point this client at `aichaos proxy`"
        f" (its base URL http://127.0.0.1:PORT/{backend}); see docs/python-api.md."
    )


def install(routers: Callable[[], Router | None]) -> None:
    """Guard the hosts `routers()` returns (None: guard nothing) from now on."""
    global _installed, _routers
    _routers = routers
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
