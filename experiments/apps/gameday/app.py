"""The game-day example app: a chat service that falls back from one model backend to another.

    python experiments/apps/gameday/app.py --host 0.0.0.0 --port 8000
    curl -X POST localhost:8000/chat -d '{"question": "hi"}'
    -> {"answer": "...", "served_by": "primary"}     (or "fallback")

It asks the primary backend (OpenAI's chat completions API at `PRIMARY_BASE_URL`)
with a short timeout and, when that fails in any way (an error status, a reset
or refused connection, a timeout, an answer it cannot read), asks the fallback
(Anthropic's messages API at `FALLBACK_BASE_URL`). When both fail it answers 503.
Standard library plus httpx only, so it runs in the aichaos image as it is.

In docker-compose.yml both base URLs point at Toxiproxy (network faults), whose
proxies forward to the aichaos proxy (provider faults), which forwards to the
aichaos mock backend.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

PRIMARY = os.environ.get("PRIMARY_BASE_URL", "http://127.0.0.1:8800/openai/v1").rstrip("/")
FALLBACK = os.environ.get("FALLBACK_BASE_URL", "http://127.0.0.1:8800/claude").rstrip("/")
PRIMARY_TIMEOUT = float(os.environ.get("PRIMARY_TIMEOUT", "3"))
FALLBACK_TIMEOUT = float(os.environ.get("FALLBACK_TIMEOUT", "10"))

client = httpx.Client(trust_env=False)


def ask_primary(question: str, headers: dict[str, str]) -> str:
    response = client.post(
        f"{PRIMARY}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        headers={"authorization": "Bearer sk-gameday", **headers},
        timeout=PRIMARY_TIMEOUT,
    )
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"])


def ask_fallback(question: str, headers: dict[str, str]) -> str:
    response = client.post(
        f"{FALLBACK}/v1/messages",
        json={
            "model": "claude-sonnet-4-6",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": question}],
        },
        headers={"x-api-key": "sk-ant-gameday", "anthropic-version": "2023-06-01", **headers},
        timeout=FALLBACK_TIMEOUT,
    )
    response.raise_for_status()
    blocks = response.json()["content"]
    return "".join(b.get("text", "") for b in blocks if b.get("type") == "text")


def answer(question: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    try:
        return 200, {"answer": ask_primary(question, headers), "served_by": "primary"}
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as first:
        primary_error = f"{type(first).__name__}: {first}"[:200]
    try:
        text = ask_fallback(question, headers)
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as second:
        return 503, {
            "error": "both backends failed",
            "primary": primary_error,
            "fallback": f"{type(second).__name__}: {second}"[:200],
        }
    took = round(time.monotonic() - started, 3)
    return 200, {"answer": text, "served_by": "fallback", "primary_error": primary_error,
                 "seconds": took}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/chat":
            self._reply(404, {"error": "not found"})
            return
        length = int(self.headers.get("content-length") or 0)
        try:
            question = str(json.loads(self.rfile.read(length) or b"{}").get("question", ""))
        except (ValueError, AttributeError):
            self._reply(400, {"error": 'send JSON: {"question": ...}'})
            return
        call = self.headers.get("x-aichaos-call")
        status, payload = answer(question, {"x-aichaos-call": call} if call else {})
        self._reply(status, payload)

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: no access log
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="the game-day example chat app")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"game-day app on http://{args.host}:{args.port}", flush=True)
    print(f"  primary:  {PRIMARY}\n  fallback: {FALLBACK}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
