"""The proxy against hostile clients and upstreams: oversized bodies, half-sent request heads,
bodiless statuses, TLS spoken to a plain port, and a full connection pool."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aichaos.intercept.backends import BackendSpec
from aichaos.mock import MockBackend, MockConfig
from aichaos.proxy import serve_proxy_in_thread
from aichaos.proxy.forwarding import Forwarder, UpstreamPoolExhausted
from proxy_helpers import make_session
from servers import serve

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
IN_TIME = 1.0  # seconds: the body timeout of a proxy that a client feeds in time


def test_oversized_bodies_get_the_providers_413() -> None:
    with serve_proxy_in_thread(make_session({"openai": "openai"}), max_body=4096) as proxy:
        url = proxy.backend_url("openai") + "/v1/chat/completions"
        assert httpx.post(url, json=CHAT).status_code == 200
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 10_000}]}
        answer = httpx.post(url, json=big)
        assert answer.status_code == 413
        assert "limit" in answer.json()["error"]["message"]  # OpenAI's error shape

        def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
            yield b'{"model": "gpt-4o", "messages": ['
            for _ in range(100):
                yield b'{"role": "user", "content": "' + b"y" * 100 + b'"},'
            yield b"]}"

        streamed = httpx.post(url, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_half_sent_request_heads_are_dropped_with_a_408() -> None:
    with serve_proxy_in_thread(make_session({"openai": "openai"}), header_timeout=0.2) as proxy:
        for opening in (b"", b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"):
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
                sock.sendall(opening)
                assert _read_until_closed(sock).startswith(b"HTTP/1.1 408")
        # a client that sends its head in time is served as usual, on a kept-alive connection
        with httpx.Client(base_url=proxy.backend_url("openai")) as client:
            for _ in range(2):
                assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


async def _drain(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An upstream that reads the whole body before answering (after a pause on `/slow`)."""
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/slow"):
        await asyncio.sleep(3.0)  # longer than the proxy's body timeout (IN_TIME) in the test
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_half_sent_request_bodies_are_dropped_with_a_408() -> None:
    """A client that sends its head and then stops within its body held its connection
    and its task forever: read whole (the mock) or streamed to a real upstream."""
    head = (
        b"POST /%s/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        b"content-type: application/json\r\ncontent-length: 100000\r\n\r\n"
    )
    with serve(_drain) as base:
        session = make_session(
            {"openai": "openai", "up": BackendSpec(provider="openai", upstream=base)}
        )
        with serve_proxy_in_thread(session, header_timeout=0.2, inspect_body=1024) as proxy:
            for backend in (b"openai", b"up"):
                with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
                    sock.sendall(head % backend + b'{"model": "gpt-4o", ' + b" " * 4096)
                    answer = _read_until_closed(sock)
                    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
                    assert answer.endswith(b"the request body came too slowly")
        # a body sent in time is forwarded as usual, also one the upstream reads slower than
        # it comes (the proxy stops reading it: that pause is not the client's). The timeout
        # is longer here: a loaded machine can hold a sending client back for 0.2 s.
        in_time = serve_proxy_in_thread(session, header_timeout=IN_TIME, inspect_body=1024)
        with in_time as proxy, httpx.Client(base_url=proxy.backend_url("up")) as client:
            big = {**CHAT, "messages": [{"role": "user", "content": "x" * 10_000}]}
            assert client.post("/v1/chat/completions", json=big).status_code == 200
            # 16 MB: more than the sockets buffer, so the proxy must stop reading
            huge = b'{"model": "gpt-4o", "input": "' + b"x" * 16_000_000 + b'"}'
            assert client.post("/v1/slow", content=huge).status_code == 200


async def _bodiless(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    status = 204 if scope["path"].endswith("204") else 304
    headers = [(b"etag", b'"v1"')] if status == 304 else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def test_no_content_length_on_204_and_304() -> None:
    with serve(_bodiless) as base:
        session = make_session({"up": BackendSpec(provider="openai", upstream=base)})
        with serve_proxy_in_thread(session) as proxy:
            for status in (204, 304):
                answer = httpx.get(proxy.backend_url("up") + f"/v1/files/{status}")
                assert answer.status_code == status
                assert "content-length" not in answer.headers


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything (a plain-HTTP server
    waiting for a request line that a TLS ClientHello never completes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def test_tls_to_a_plain_port_is_a_502_within_the_upstream_timeout(silent_port: int) -> None:
    upstream = f"https://127.0.0.1:{silent_port}"
    session = make_session({"up": BackendSpec(provider="openai", upstream=upstream)})
    with serve_proxy_in_thread(session, upstream_read_timeout=0.5) as proxy:
        answer = httpx.post(proxy.backend_url("up") + "/v1/chat/completions", json=CHAT, timeout=60)
    assert answer.status_code == 502
    assert "plain HTTP" in answer.json()["error"]["message"]


def test_a_full_connection_pool_is_a_clear_failure(silent_port: int) -> None:
    async def main() -> None:
        forwarder = Forwarder(connect_timeout=0.3, read_timeout=None, max_connections=1)
        base = f"http://127.0.0.1:{silent_port}"
        held = asyncio.ensure_future(forwarder.request("GET", base, b"/a", b"", [], b""))
        await asyncio.sleep(0)
        while forwarder.open_connections < 1:  # the first request holds the only connection
            await asyncio.sleep(0.01)
        with pytest.raises(UpstreamPoolExhausted, match="max_connections"):
            await forwarder.request("GET", base, b"/b", b"", [], b"")
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
        await forwarder.aclose()

    asyncio.run(main())


def test_stopping_with_live_streams_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    session = make_session({"openai": "openai"})
    session.mock = MockBackend(MockConfig(seed=0, tokens_per_second=5))  # a long, slow stream
    body = {**CHAT, "stream": True}
    opened = threading.Event()
    failures: list[str] = []

    def stream(url: str) -> None:
        try:
            with httpx.stream("POST", url, json=body, timeout=60) as answer:
                for _ in answer.iter_bytes():
                    opened.set()
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)

    with caplog.at_level(logging.INFO), serve_proxy_in_thread(session) as proxy:
        client = threading.Thread(
            target=stream, args=(proxy.backend_url("openai") + "/v1/chat/completions",)
        )
        client.start()
        assert opened.wait(30)
    client.join(30)
    assert failures == ["RemoteProtocolError"]  # the client saw its stream end
    assert not [r for r in caplog.records if r.exc_info], "no traceback when stopping"
