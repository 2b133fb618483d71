"""A tiny chat service (standard library HTTP server) for the `command` target.

    python apps/chat_server.py --port 8000 [--forward traceparent] [--no-fallback]
    curl -X POST localhost:8000/chat -d '{"question": "hi"}'

Its SDK clients are built with no base URL: they read `OPENAI_BASE_URL` and
`ANTHROPIC_BASE_URL` from the environment, which aichaos sets to its chaos
proxy. By default it forwards nothing, like most apps: aichaos ties its upstream
attempts to requests by inference. `--forward traceparent` passes the request's
W3C trace context on to its model calls (what OpenTelemetry instrumentation
does), `--forward x-aichaos-call` the aichaos call id; either makes that exact.
`--no-fallback` answers 503 when OpenAI fails, instead of asking Claude.
"""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import openai

primary = openai.OpenAI(max_retries=0, timeout=2.0)
fallback = anthropic.Anthropic(max_retries=1, timeout=10.0)


FORWARD = "none"  # which request header to pass on to the model calls (see --forward)
FALLBACK = True


def answer(question: str, headers: dict[str, str]) -> tuple[str, str]:
    try:
        reply = primary.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": question}],
            extra_headers=headers,
        )
        return reply.choices[0].message.content or "", "openai"
    except openai.APIError:
        if not FALLBACK:
            raise
        message = fallback.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=512,
            messages=[{"role": "user", "content": question}],
            extra_headers=headers,
        )
        return "".join(b.text for b in message.content if b.type == "text"), "claude"


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
            question = json.loads(self.rfile.read(length) or b"{}").get("question", "")
        except ValueError:
            self._reply(400, {"error": 'send JSON: {"question": ...}'})
            return
        value = self.headers.get(FORWARD)
        forwarded = {FORWARD: value} if value else {}
        try:
            text, served_by = answer(question, forwarded)
        except (anthropic.APIError, openai.APIError) as exc:
            self._reply(503, {"error": f"both providers failed: {type(exc).__name__}"})
            return
        self._reply(200, {"answer": text, "served_by": served_by})

    def _reply(self, status: int, payload: dict[str, str]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: no access log
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--forward", choices=["none", "traceparent", "x-aichaos-call"], default="none"
    )
    parser.add_argument("--no-fallback", action="store_true", help="no fallback to Claude")
    args = parser.parse_args()
    global FORWARD, FALLBACK
    FORWARD, FALLBACK = args.forward, not args.no_fallback
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"chat server listening on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
