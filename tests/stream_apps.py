"""Streaming apps for the `incomplete_answers` tests, with the real openai and anthropic SDKs.

A prompt names the provider and the app's style: `openai naive: ...`, `anthropic careful: ...`.
The naive style shows whatever text arrived (it swallows the SDK's error); the careful one
notices a stream that did not finish and asks again without streaming.

Usable as a python target (`answer`), as an ASGI app for an http target (`asgi_app`: the
request says where the proxy is) and as a command (`python stream_apps.py PORT`: the SDKs
read OPENAI_BASE_URL and ANTHROPIC_BASE_URL, which aichaos sets).
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import anyio
import openai

from servers import read_body

OPENAI_MODEL, CLAUDE_MODEL = "gpt-4o-mini", "claude-sonnet-4-6"


def _openai(prompt: str, careful: bool, base_url: str | None) -> str:
    client = openai.OpenAI(max_retries=0, timeout=5.0, base_url=base_url)
    messages: Any = [{"role": "user", "content": prompt}]
    parts, finish = [], None
    try:
        for chunk in client.chat.completions.create(
            model=OPENAI_MODEL, messages=messages, stream=True
        ):
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
    except Exception:  # the SDK error, or the HTTP library's for a dropped stream
        if not careful:
            return "".join(parts)  # naive: show what arrived
    if careful and finish is None:
        reply = client.chat.completions.create(model=OPENAI_MODEL, messages=messages)
        return reply.choices[0].message.content or ""
    return "".join(parts)


def _anthropic(prompt: str, careful: bool, base_url: str | None) -> str:
    client = anthropic.Anthropic(max_retries=0, timeout=5.0, base_url=base_url)
    messages: Any = [{"role": "user", "content": prompt}]
    parts, stopped = [], False
    try:
        with client.messages.stream(
            model=CLAUDE_MODEL, max_tokens=256, messages=messages
        ) as stream:
            for event in stream:
                if event.type == "text":
                    parts.append(event.text)
                elif event.type == "message_stop":
                    stopped = True
    except Exception:  # the SDK error, or the HTTP library's for a dropped stream
        if not careful:
            return "".join(parts)
    if careful and not stopped:
        message = client.messages.create(model=CLAUDE_MODEL, max_tokens=256, messages=messages)
        return "".join(b.text for b in message.content if b.type == "text")
    return "".join(parts)


def answer(prompt: str, bases: dict[str, str] | None = None) -> str:
    """Answer a prompt `PROVIDER STYLE: text` (bases: each provider's base URL, else the SDK's)."""
    head, _, _ = prompt.partition(":")
    provider, style = head.split()
    base = (bases or {}).get(provider)
    ask = _openai if provider == "openai" else _anthropic
    return ask(prompt, style == "careful", base)


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """POST {"q": prompt, "openai": base URL, "anthropic": base URL} -> {"answer": text}."""
    if scope["type"] != "http":
        return
    request = json.loads(await read_body(receive))
    bases = {"openai": request["openai"] + "/v1", "anthropic": request["anthropic"]}
    text = await anyio.to_thread.run_sync(answer, request["q"], bases)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps({"answer": text}).encode()})


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._reply({"status": "ok"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self._reply({"answer": answer(json.loads(self.rfile.read(length))["q"])})

    def _reply(self, payload: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Handler).serve_forever()
