"""What the hot paths are compared with besides bare apps: peers a user would pick, and the
floor of a proxy on the same stack.

- llmock (PyPI `llmock`, "chaos engineering for LLM apps: mock OpenAI, Anthropic, Gemini"),
  the mock's peer: FastAPI on uvicorn, installed into its own virtualenv under /tmp on first
  use, never a project dependency. (npm has an unrelated `llmock`, a generic fastify mock
  server; it is not this peer.)
- mitmdump (PyPI `mitmproxy`) in reverse mode, the proxy's peer: see bench_proxy.mitmdump.
- `bare_proxy`: a raw ASGI app on the same uvicorn + httptools stack that forwards with the
  proxy's own upstream client (`aichaos.proxy.forwarding.Forwarder`) and nothing else: no
  session, plan, driver, records or stats. Its CPU is the floor under `aichaos proxy`.
  `bare_proxy_httpx` is the same app with `httpx.AsyncClient` as its upstream client: the
  measured reason the proxy has a client of its own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LLMOCK_VENV = Path("/tmp/aichaos-bench-llmock")


def _install(venv: Path, package: str, binary: str) -> Path:
    path = venv / "bin" / binary
    if not path.exists():
        print(f"installing {package} into {venv} (its own virtualenv) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", package], check=True)
    return path


def _wait_port(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


@contextmanager
def llmock() -> Iterator[tuple[int, str]]:
    """llmock serving on a free port: (pid, base URL). Its OpenAI API is at /v1."""
    binary = _install(LLMOCK_VENV, "llmock", "llmock")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(process, port, "llmock")
        yield process.pid, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


async def read_body(receive: Any) -> bytes:
    """An ASGI request's whole body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def bare_proxy(upstream: str) -> Any:
    """The proxy's floor: forward with the proxy's upstream client, nothing else."""
    from aichaos.proxy.forwarding import Forwarder
    from aichaos.proxy.headers import end_to_end, request_headers

    forwarder = Forwarder()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        response = await forwarder.request(
            scope["method"],
            upstream,
            scope["raw_path"],
            scope["query_string"],
            request_headers(scope["headers"]),
            body,
        )
        start = {"type": "http.response.start", "status": response.status}
        start["headers"] = end_to_end(response.headers)
        if response.complete:
            await send(start)
            data = b"".join(response.take_all())
            await send({"type": "http.response.body", "body": data})
        else:
            await send(start)
            async for chunk in response:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        response.release()

    return app


def bare_proxy_httpx(upstream: str) -> Any:
    """The same floor with `httpx.AsyncClient` as the upstream client (why the proxy has its
    own: docs/performance.md). Hop-by-hop headers are dropped as the proxy does."""
    import httpx

    from aichaos.proxy.headers import end_to_end, request_headers

    client = httpx.AsyncClient(base_url=upstream, timeout=600.0, limits=httpx.Limits(
        max_connections=1000, max_keepalive_connections=100))  # fmt: skip

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = [(k, v) for k, v in request_headers(scope["headers"]) if k != b"host"]
        request = client.build_request(
            scope["method"], scope["path"], headers=headers, content=body
        )
        response = await client.send(request, stream=True)
        raw = [(k.lower(), v) for k, v in response.headers.raw]
        start = {"type": "http.response.start", "status": response.status_code}
        start["headers"] = end_to_end(raw)
        await send(start)
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        await response.aclose()

    return app
