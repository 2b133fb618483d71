"""ASGI types, and reading an ASGI request into a `RequestInfo`.

Answers are sent by playing an exchange's life: see `aichaos.exchange.asgi`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from aichaos.wire.exchange import RequestInfo

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")
"""A path `quote` leaves as it is (its always-safe characters and `/`)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def read_request(
    scope: Scope, receive: Receive, *, backend: str = "", provider: str = ""
) -> RequestInfo:
    """Read an ASGI HTTP request, body included, into a `RequestInfo`."""
    message = await receive()
    if message.get("type") == "http.request" and not message.get("more_body", False):
        body = message.get("body", b"")  # the common case: the whole body in one message
        body = body if type(body) is bytes else bytes(body)
    else:
        chunks: list[bytes] = []
        while True:
            if message.get("type") == "http.request":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    break
            elif message.get("type") == "http.disconnect":
                break
            message = await receive()
        body = b"".join(chunks)
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()  # (bytes or bytearray: both decode)
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    path = str(scope.get("path", "/"))
    query = scope.get("query_string", b"").decode("latin-1")
    shown = path if _PLAIN_PATH.fullmatch(path) else quote(path)
    url = f"{scope.get('scheme', 'http')}://{host}{shown}" + (f"?{query}" if query else "")
    return RequestInfo(
        method=str(scope.get("method", "GET")).upper(),
        url=url,
        host=host.split(":", 1)[0] if not host.startswith("[") else host,
        path=path,
        query=query,
        headers=headers,
        body=body,
        backend=backend,
        provider=provider,
    )
