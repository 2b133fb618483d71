"""Helpers for the proxy tests: sessions, and a deterministic upstream that records requests."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aichaos.faults.base import parse_fault
from aichaos.faults.engine import FaultEngine
from aichaos.intercept.backends import parse_backends
from aichaos.intercept.session import Session
from aichaos.mock import MockBackend, MockConfig
from aichaos.records import Attempt, Recorder
from aichaos.wire.asgi import Receive, Scope, Send


def make_session(
    backends: Mapping[str, object], faults: Iterable[Mapping[str, Any]] = (), seed: int = 0
) -> Session:
    engine = FaultEngine([parse_fault(dict(f)) for f in faults], seed=seed)
    mock = MockBackend(MockConfig(seed=seed))
    specs = parse_backends(dict(backends))
    return Session(specs, engine, mock, Recorder())


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    """Poll `condition()` until true (the proxy runs in another thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def settled(session: Session, timeout: float = 30.0) -> list[Attempt]:
    """The session's attempts once each has finished: a client of the proxy has its
    answer when the last byte is sent, a moment before the proxy records how it ended."""
    assert session.recorder.settle(timeout), "attempts still open"
    return session.recorder.attempts


def chat_chunk(index: int, text: str, finish: str | None = None) -> bytes:
    delta = {"content": text} if finish is None else {}
    payload = {
        "id": "chatcmpl-fixed",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class ScriptedUpstream:
    """An upstream whose every answer is a pure function of the request (no ids, no clocks).

        Paths: `/v1/chat/completions` (JSON, or SSE with `n` events `gap` seconds apart
        when the body says `"stream": true`; `"hold": true` ends the body only once the
        client has left), `/status/<code>`, `/bytes/<n>`, `/gzip`,
        `/echo` (what it received), `/forever` (an SSE event every 50 ms until the
        client leaves). Records every request and every disconnect it notices, and when
    (`time.monotonic()`) it sent each event of its streamed chat answers (`sent_at`).
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.disconnects = 0
        self.open_streams = 0
        self.sent_at: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        path: str = scope["path"]
        record = {
            "method": scope["method"],
            "path": path,
            "raw_path": scope.get("raw_path"),
            "query": scope["query_string"],
            "headers": [(bytes(k), bytes(v)) for k, v in scope["headers"]],
            "body": body,
            "client_port": scope["client"][1] if scope.get("client") else None,
        }
        self.requests.append(record)
        if path == "/forever":
            await self._forever(receive, send)
        elif path.endswith("/chat/completions"):
            await self._chat(body, receive, send)
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            error = {"error": {"message": f"status {status}", "type": "x", "code": None}}
            await _whole(send, status, json.dumps(error).encode(), b"application/json")
        elif path.startswith("/bytes/"):
            size = int(path.rsplit("/", 1)[1])
            data = random.Random(size).randbytes(size)
            await _whole(send, 200, data, b"application/octet-stream")
        elif path == "/gzip":
            data = gzip.compress(json.dumps({"zipped": list(range(200))}).encode(), mtime=0)
            await _whole(send, 200, data, b"application/json", [(b"content-encoding", b"gzip")])
        else:  # /echo and anything else
            echo = {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode("latin-1"),
                "headers": [[k.decode(), v.decode()] for k, v in record["headers"]],
                "sha256": hashlib.sha256(body).hexdigest(),
                "length": len(body),
            }
            await _whole(send, 200, json.dumps(echo).encode(), b"application/json")

    async def _chat(self, body: bytes, receive: Receive, send: Send) -> None:
        request = json.loads(body or b"{}")
        words = str(request.get("messages", [{}])[-1].get("content", "hello")).split() or ["hi"]
        if not request.get("stream"):
            answer = {
                "id": "chatcmpl-fixed",
                "object": "chat.completion",
                "created": 1760000000,
                "model": "gpt-4o",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 9},
            }
            await _whole(send, 200, json.dumps(answer).encode(), b"application/json")
            return
        gap = float(request.get("gap", 0.0))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"x-upstream", b"yes")],
            }
        )
        chunks = [chat_chunk(0, w + " ") for w in words] + [chat_chunk(0, "", "stop")]
        for chunk in [*chunks, b"data: [DONE]\n\n"]:
            self.sent_at.append(time.monotonic())  # stamped first: the client may read it at once
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if gap:
                await asyncio.sleep(gap)
        if request.get("hold"):  # the body's end only once the client has left
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnects += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _forever(self, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        self.open_streams += 1
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            index = 0
            while not gone.is_set():
                chunk = chat_chunk(0, f"tick{index} ")
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                index += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(gone.wait(), 0.05)
            self.disconnects += 1
        finally:
            self.open_streams -= 1
            watcher.cancel()


async def _whole(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-upstream", b"yes"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
