"""What the real-Toxiproxy tests share: an OpenAI-shaped upstream on real sockets, polling.

`Upstream` is a standard-library HTTP/1.1 server (threads, keep-alive) that answers
`POST /v1/chat/completions` with a chat completion whose content is the prompt's size:
`"size:25000"` gives 25 000 characters. `"close:..."` answers without a content-length
and closes the connection after the body, so the client reads it until the close (how
servers delimit bodies without a length). `GET /` answers the port the connection came
from (one Toxiproxy upstream connection per client connection), to tell connections
apart. Every answer is logged with when (`time.monotonic()`, this process's clock) its
first byte was written and when its last was (`Answer`), so that a test can measure
what Toxiproxy added between the upstream and the client.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import openai


@dataclass
class Answer:
    path: str
    port: int
    started: float
    finished: float
    size: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._answer(json.dumps({"port": self.client_address[1]}).encode(), close=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        prompt = str(request.get("messages", [{}])[-1].get("content", ""))
        close = prompt.startswith("close:")
        size = int(prompt.removeprefix("close:").removeprefix("size:") or 0) if ":" in prompt else 4
        body = {
            "id": "chatcmpl-toxiproxy",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "gpt-4o-mini"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "x" * size},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        self._answer(json.dumps(body).encode(), close=close)

    def _answer(self, body: bytes, *, close: bool) -> None:
        started = time.monotonic()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        else:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if close:  # the close is the end of the body: make it now, and log it with the body
            self.connection.shutdown(socket.SHUT_WR)
        answer = Answer(self.path, self.client_address[1], started, time.monotonic(), len(body))
        self.server.answers.append(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    answers: list[Answer]


@contextmanager
def upstream_server() -> Iterator[tuple[str, list[Answer]]]:
    """(`host:port` where Toxiproxy reaches the upstream, the answers it has given)."""
    public = os.environ.get("TOXIPROXY_UPSTREAM_HOST", "")
    bind = "0.0.0.0" if public else "127.0.0.1"
    if public == "auto":
        public = socket.gethostbyname(socket.gethostname())
    server = _Server((bind, 0), _Handler)
    server.answers = []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"{public or '127.0.0.1'}:{server.server_address[1]}", server.answers
    finally:
        server.shutdown()
        server.server_close()


def sdk(base_url: str, timeout: float = 30.0) -> openai.OpenAI:
    """The real openai SDK, no retries: every error is the one the connection caused."""
    return openai.OpenAI(
        base_url=base_url + "/v1", api_key="sk-toxiproxy-test", max_retries=0, timeout=timeout
    )


def ask(client: openai.OpenAI, prompt: str = "hi") -> str:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return answer.choices[0].message.content or ""


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `condition()` with a deadline (toxics come and go in the background)."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """`until` for threads."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def proxies(api: str) -> dict[str, Any]:
    """Toxiproxy's proxies, by name, each with its toxics."""
    answer: dict[str, Any] = httpx.get(f"{api}/proxies", timeout=10).json()
    return answer


def toxic_names(api: str, proxy: str) -> list[str]:
    return sorted(t["name"] for t in proxies(api).get(proxy, {}).get("toxics", []))


def ours(api: str) -> list[str]:
    """What aichaos made and left in Toxiproxy: its proxies, and its toxics on any proxy."""
    left = []
    for name, proxy in proxies(api).items():
        if name.startswith("aichaos_"):
            left.append(f"proxy {name}")
        left += [
            f"toxic {t['name']} on {name}" for t in proxy["toxics"] if "aichaos_f" in t["name"]
        ]
    return left


# --- an experiment's python target that goes through Toxiproxy ------------------------------
BASE_URL_ENV = "AICHAOS_IT_BASE_URL"
"""Where `ask_through_toxiproxy` connects: the Toxiproxy proxy in front of the upstream."""


async def ask_through_toxiproxy(prompt: str) -> str:
    """A target (`toxiproxy_helpers:ask_through_toxiproxy`): one SDK call via the proxy."""
    client = openai.AsyncOpenAI(
        base_url=os.environ[BASE_URL_ENV] + "/v1", api_key="sk-toxiproxy-test", max_retries=0
    )
    async with client:
        answer = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
    return answer.choices[0].message.content or ""


@contextmanager
def foreign_proxy(
    api: str, name: str, upstream: str, listen: str = "127.0.0.1:0", *toxics: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """A proxy someone else made (with `toxics`), as aichaos finds it; deleted afterwards.

    Yields the proxy as Toxiproxy reports it before aichaos sees it.
    """
    created = httpx.post(
        f"{api}/proxies", json={"name": name, "listen": listen, "upstream": upstream}, timeout=10
    )
    assert created.status_code == 201, created.text
    try:
        for toxic in toxics:
            added = httpx.post(f"{api}/proxies/{name}/toxics", json=toxic, timeout=10)
            assert added.is_success, added.text
        yield proxies(api)[name]
    finally:
        httpx.delete(f"{api}/proxies/{name}", timeout=10)
