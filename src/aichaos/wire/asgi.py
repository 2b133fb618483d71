"""Driving an ASGI connection from a sans-IO `Reply`, and reading a request into `RequestInfo`.

The status line and headers are sent lazily, right before the first body bytes: a `Pause`
or `Hang` that comes before any bytes therefore delays the headers too (a slow or hung
server), and an `Abort` before any bytes drops the connection without a response (most
servers, uvicorn included, then answer 500 themselves if they still can).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import anyio

from aichaos.wire.exchange import Abort, Hang, Pause, Reply, RequestInfo

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def send_reply(
    reply: Reply, send: Send, *, header_delay: float = 0.0, receive: Receive | None = None
) -> None:
    """Send `reply` through ASGI `send`, flushing each bytes part as its own chunk.

    `Pause` sleeps; `Hang` sleeps `limit` (or forever) and then drops the connection;
    `Abort` raises `ConnectionAbortedError` so the server drops the connection. With
    `receive`, a client disconnect cancels the reply (so a hang never outlives its client).
    """
    if receive is None:
        await _drive(reply, send, header_delay)
        return
    aborted: ConnectionAbortedError | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while True:
                message = await receive()
                if message.get("type") == "http.disconnect":
                    group.cancel_scope.cancel()
                    return

        group.start_soon(watch)
        try:
            await _drive(reply, send, header_delay)
        except ConnectionAbortedError as exc:
            aborted = exc  # re-raised outside, so it is not wrapped in an ExceptionGroup
        group.cancel_scope.cancel()
    if aborted is not None:
        raise aborted


async def _drive(reply: Reply, send: Send, header_delay: float) -> None:
    started = False

    async def start() -> None:
        nonlocal started
        started = True
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers
                ],
            }
        )

    if header_delay > 0:
        await anyio.sleep(header_delay)
    for part in reply.parts():
        if isinstance(part, bytes):
            if not part:
                continue
            if not started:
                await start()
            await send({"type": "http.response.body", "body": part, "more_body": True})
        elif isinstance(part, Pause):
            if part.seconds > 0:
                await anyio.sleep(part.seconds)
        elif isinstance(part, Hang):
            if part.limit is None:
                await anyio.sleep_forever()
            await anyio.sleep(part.limit or 0)
            raise ConnectionAbortedError("server gave up on a hung response")
        elif isinstance(part, Abort):
            raise ConnectionAbortedError(part.message)
    if not started:
        await start()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def read_request(
    scope: Scope, receive: Receive, *, backend: str = "", provider: str = ""
) -> RequestInfo:
    """Read an ASGI HTTP request, body included, into a `RequestInfo`."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message.get("type") == "http.request":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                break
        elif message.get("type") == "http.disconnect":
            break
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    path = str(scope.get("path", "/"))
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    url = f"{scope.get('scheme', 'http')}://{host}{quote(path)}" + (f"?{query}" if query else "")
    return RequestInfo(
        method=str(scope.get("method", "GET")).upper(),
        url=url,
        host=host.split(":", 1)[0] if not host.startswith("[") else host,
        path=path,
        query=query,
        headers=headers,
        body=b"".join(chunks),
        backend=backend,
        provider=provider,
    )
