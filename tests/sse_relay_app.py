"""A chat app that relays its model's SSE stream to its own client, as many web apps do.

POST {"provider": "openai" | "anthropic" | "gemini", "base": BACKEND_URL, "prompt": TEXT}:
the app asks the provider for a streamed answer and passes the bytes on as they arrive
(status and content type included). It is naive on purpose: when the upstream stream
breaks, it ends its own answer cleanly, so only the stream's framing shows the cut.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx

from servers import read_body


def upstream_request(provider: str, base: str, prompt: str, *, stream: bool) -> dict[str, Any]:
    """The provider request (url, json) for one prompt, streamed or not."""
    user = [{"role": "user", "content": prompt}]
    if provider == "openai":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": user}
        url = f"{base}/v1/chat/completions"
    elif provider == "anthropic":
        body = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": user}
        url = f"{base}/v1/messages"
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{base}/v1beta/models/gemini-2.0-flash:{method}"
        return {"url": url, "json": {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}}
    if stream:
        body["stream"] = True
    return {"url": url, "json": body}


class RelayApp:
    """The relay; `gates[n]` holds its n-th request (from 1) until set (a test's second actor
    acts meanwhile); `forward` passes the call's `traceparent` on to the provider."""

    def __init__(
        self, gates: dict[int, threading.Event] | None = None, *, forward: bool = False
    ) -> None:
        self.gates, self.forward, self.count = gates or {}, forward, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.count += 1
        gate = self.gates.get(self.count)
        if gate is not None:
            await asyncio.to_thread(gate.wait, 30.0)
        ask = json.loads(await read_body(receive))
        request = upstream_request(ask["provider"], ask["base"], ask["prompt"], stream=True)
        if self.forward:
            headers = dict(scope["headers"])
            request["headers"] = {"traceparent": headers[b"traceparent"].decode()}
        client = httpx.AsyncClient(timeout=10.0)
        async with client, client.stream("POST", **request) as upstream:
            content_type = upstream.headers.get("content-type", "text/plain").encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status_code,
                    "headers": [(b"content-type", content_type)],
                }
            )
            try:
                async for chunk in upstream.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError:
                pass  # naive: the upstream broke off, the answer just ends here
        await send({"type": "http.response.body", "body": b"", "more_body": False})


app = RelayApp()
