"""A small LLM router, shaped like the one of issue 11's game day, for tests.

Configured only by a JSON file (`--config`): `{"upstreams": [{"name", "url", "key"}, ...],
"cooldown": SECONDS}`, in priority order. It lists the models of its first upstream at
start (start-up traffic), then serves `POST /chat {"prompt"}` by forwarding an OpenAI chat
completion to the first upstream that is not cooling down; a 429 or 5xx benches that
upstream for `cooldown` seconds and the next one is tried. `GET /health` answers 200.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class Router:
    def __init__(self, config: dict[str, Any]) -> None:
        self.upstreams: list[dict[str, str]] = config["upstreams"]
        self.cooldown = float(config.get("cooldown", 10))
        self.benched: dict[str, float] = {}
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=10, trust_env=False)

    def startup(self) -> None:
        first = self.upstreams[0]
        headers = {"authorization": f"Bearer {first['key']}"}
        self.client.get(first["url"] + "/v1/models", headers=headers)

    def chat(self, prompt: str) -> tuple[int, dict[str, Any]]:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
        for upstream in self.upstreams:
            with self.lock:
                if self.benched.get(upstream["name"], 0.0) > time.monotonic():
                    continue
            headers = {"authorization": f"Bearer {upstream['key']}"}
            try:
                answer = self.client.post(
                    upstream["url"] + "/v1/chat/completions", json=body, headers=headers
                )
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                text = answer.json()["choices"][0]["message"]["content"]
                return 200, {"answer": text, "upstream": upstream["name"]}
            with self.lock:
                self.benched[upstream["name"]] = time.monotonic() + self.cooldown
        return 502, {"error": "every upstream failed or is cooling down"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as file:
        router = Router(json.load(file))
    router.startup()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(200, {"ok": True})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            prompt = json.loads(self.rfile.read(length) or b"{}").get("prompt", "")
            self._reply(*router.chat(prompt))

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
