"""With no fault active the proxy is transparent: bytes, streams as they arrive, pooled
connections, large bodies, and clients that leave mid-stream without leaking anything."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from aichaos.intercept.backends import BackendSpec
from aichaos.proxy import RunningProxy, serve_proxy_in_thread
from proxy_helpers import ScriptedUpstream, make_session, settled, wait_for
from servers import serve

_IGNORED = {"date", "transfer-encoding", "connection", "keep-alive"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[ScriptedUpstream, str]]:
    app = ScriptedUpstream()
    with serve(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def proxy(upstream: tuple[ScriptedUpstream, str]) -> Iterator[RunningProxy]:
    session = make_session({"up": {"provider": "openai", "upstream": upstream[1]}})
    with serve_proxy_in_thread(session) as running:
        yield running


def _request_plan(seed: int, count: int) -> list[tuple[str, str, bytes]]:
    """A seeded mix of requests: JSON and streamed chats, errors, binary, gzip, echoes."""
    rng = random.Random(seed)
    plan: list[tuple[str, str, bytes]] = []
    for index in range(count):
        kind = rng.choice(["chat", "stream", "status", "bytes", "gzip", "echo", "big"])
        words = " ".join(rng.choice(["alpha", "beta", "gamma", "δέλτα", "🙂"]) for _ in range(9))
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": words}]}
        if kind == "chat":
            plan.append(("POST", "/v1/chat/completions", json.dumps(chat).encode()))
        elif kind == "stream":
            body = json.dumps({**chat, "stream": True}).encode()
            plan.append(("POST", "/v1/chat/completions", body))
        elif kind == "status":
            code = rng.choice([400, 401, 404, 429, 500, 503])
            plan.append(("POST", f"/status/{code}", b"{}"))
        elif kind == "bytes":
            plan.append(("GET", f"/bytes/{rng.choice([0, 1, 1000, 70000, 300000])}", b""))
        elif kind == "gzip":
            plan.append(("GET", "/gzip", b""))
        elif kind == "echo":
            plan.append(("POST", f"/echo?i={index}&q=a%20b", rng.randbytes(rng.randrange(5000))))
        else:
            plan.append(("POST", "/echo", rng.randbytes(3 * 1024 * 1024)))
    return plan


def _fetch(client: httpx.Client, method: str, url: str, body: bytes) -> dict[str, Any]:
    with client.stream(method, url, content=body, headers={"accept-encoding": "gzip"}) as resp:
        chunks = list(resp.iter_raw())  # undecoded: what went over the wire
    headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _IGNORED]
    return {"status": resp.status_code, "headers": headers, "body": b"".join(chunks)}


def _split(path: str) -> tuple[str, str]:
    route, _, query = path.partition("?")
    return route, query


def _end_to_end(headers: Any) -> list[Any]:
    """Headers minus the per-hop framing ones (`connection`, `content-length`)."""
    return [list(pair) for pair in headers if pair[0] not in ("connection", "content-length")]


def test_byte_for_byte_over_many_mixed_requests(
    proxy: RunningProxy, upstream: tuple[ScriptedUpstream, str]
) -> None:
    plan = _request_plan(seed=11, count=160)
    direct_base, proxied_base = upstream[1], proxy.backend_url("up")
    with httpx.Client(timeout=30) as direct, httpx.Client(timeout=30) as proxied:

        def both(item: tuple[str, str, bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
            method, path, body = item
            return (
                _fetch(direct, method, direct_base + path, body),
                _fetch(proxied, method, proxied_base + path, body),
            )

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(both, plan))
    kinds, framed = set(), 0
    for (method, path, body), (want, got) in zip(plan, results, strict=True):
        assert got["status"] == want["status"], path
        kinds.add(path.split("/")[1].split("?")[0])
        if path.startswith("/echo"):  # the echo shows the request: the hop-by-hop headers differ
            echo, direct_echo = json.loads(got["body"]), json.loads(want["body"])
            assert echo["sha256"] == direct_echo["sha256"] == hashlib.sha256(body).hexdigest()
            assert (echo["method"], echo["path"], echo["query"]) == (method, *_split(path))
            assert _end_to_end(echo["headers"]) == _end_to_end(direct_echo["headers"])
            continue
        assert _end_to_end(got["headers"]) == _end_to_end(want["headers"]), path
        assert got["body"] == want["body"], path
        length = dict(got["headers"]).get("content-length")  # framing is per hop
        if length is not None:  # the others are chunked
            assert int(length) == len(got["body"]), path
            framed += 1
    assert kinds >= {"v1", "status", "bytes", "gzip", "echo"}
    assert framed > 0  # some answers were framed by their length, and it was right
    attempts = settled(proxy.session)
    assert len(attempts) >= len(plan) and all(a.error is None for a in attempts)


def test_a_client_leaving_after_the_final_event_had_the_whole_answer(
    proxy: RunningProxy, upstream: tuple[ScriptedUpstream, str]
) -> None:
    """The openai SDK closes its response as soon as it reads `data: [DONE]`, before the
    body's last chunk: the attempt is complete, with no error."""
    app, _ = upstream
    disconnects = app.disconnects
    client = openai.OpenAI(base_url=proxy.backend_url("up") + "/v1", api_key="x", max_retries=0)
    chunks = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two"}],
        stream=True,
        extra_body={"hold": True},
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two "
    wait_for(lambda: app.disconnects > disconnects)  # only the client's leaving ended it
    last = settled(proxy.session)[-1]
    assert (last.outcome, last.error, last.ok) == ("complete", None, True)


def test_stream_events_are_forwarded_as_they_arrive(
    proxy: RunningProxy, upstream: tuple[ScriptedUpstream, str]
) -> None:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "gap": 0.15,
        "messages": [{"role": "user", "content": "one two three four"}],
    }
    arrivals: list[tuple[float, bytes]] = []
    upstream[0].sent_at.clear()
    with httpx.stream(
        "POST", proxy.backend_url("up") + "/v1/chat/completions", json=body, timeout=30
    ) as response:
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic(), chunk))
    events = b"".join(chunk for _, chunk in arrivals).split(b"\n\n")
    assert events[-2] == b"data: [DONE]"
    assert len(arrivals) >= 6  # one chunk per upstream event, not one buffered body
    sent = upstream[0].sent_at
    assert len(sent) == 6 and sent[-1] - sent[0] >= 5 * 0.15
    # Orderings only (the upstream's clock is this process's): the first event reached the
    # client before the upstream had sent its last one, 0.75 s later, so the proxy did not
    # wait for the rest; and nothing arrived before the upstream sent it.
    assert arrivals[0][0] < sent[-1]
    assert arrivals[-1][0] >= sent[-1]


def test_keep_alive_and_upstream_pooling(upstream: tuple[ScriptedUpstream, str]) -> None:
    app, url = upstream
    session = make_session({"up": {"provider": "openai", "upstream": url}})
    with serve_proxy_in_thread(session) as proxy, httpx.Client() as client:  # an empty pool
        app.requests.clear()
        for index in range(20):
            response = client.post(proxy.backend_url("up") + f"/echo?n={index}", content=b"x")
            assert response.status_code == 200
            assert len(proxy.app.connections) == 1  # one client connection, kept alive
    ports = {request["client_port"] for request in app.requests}
    assert len(app.requests) == 20
    assert len(ports) == 1  # one pooled upstream connection for all twenty


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_client_disconnect_mid_stream_cancels_upstream(
    proxy: RunningProxy, upstream: tuple[ScriptedUpstream, str]
) -> None:
    app, _ = upstream
    disconnects = app.disconnects
    before = _open_fds()
    clients = 20

    def leave_early(_: int) -> int:
        received = 0
        with httpx.stream("GET", proxy.backend_url("up") + "/forever", timeout=10) as response:
            for chunk in response.iter_raw():
                received += chunk.count(b"data:")
                if received >= 3:
                    break  # closes the connection mid-stream
        return received

    with ThreadPoolExecutor(max_workers=clients) as pool:
        assert all(n >= 3 for n in pool.map(leave_early, range(clients)))
    wait_for(lambda: app.disconnects - disconnects == clients, timeout=5)  # upstream cancelled
    wait_for(lambda: proxy.stats.inflight == 0 and app.open_streams == 0)
    wait_for(lambda: _open_fds() <= before, timeout=5)  # sockets both ways closed
    assert len(proxy.app.connections) == 0
    recent = [a for a in proxy.session.recorder.attempts if a.path == "/forever"][-clients:]
    assert {a.error for a in recent} == {"client_disconnected"}


CHAT_STREAM = {"model": "gpt-4o", "messages": [], "stream": True}


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "stream_stall", "after": 2, "stall": "30s"},
        {"kind": "slow_stream", "inter_token": "30s"},
    ],
)
def test_a_client_leaving_a_paused_stream_is_not_a_complete_answer(fault: dict[str, Any]) -> None:
    """The upstream's whole stream arrived at once and the shaper read its final event
    before the pause it put in front of it: a client leaving in that pause never got it
    (this was recorded complete)."""
    from aichaos.mock import MockConfig, create_app

    with serve(create_app(MockConfig(seed=3))) as base:
        backends = {"up": BackendSpec(provider="openai", upstream=base), "m": "openai"}
        session = make_session(backends, [{**fault, "backend": ["up", "m"]}])
        with serve_proxy_in_thread(session) as proxy:
            for backend in ("up", "m"):
                url = proxy.backend_url(backend) + "/v1/chat/completions"
                body = {**CHAT_STREAM, "messages": [{"role": "user", "content": backend}]}
                with httpx.stream("POST", url, json=body, timeout=30) as response:
                    for chunk in response.iter_raw():
                        if b"data:" in chunk:
                            break  # leaves during the pause that follows
            attempts = settled(session)
    assert [(a.backend, a.outcome, a.error) for a in attempts] == [
        ("up", "stalled", "client_disconnected"),
        ("m", "stalled", "client_disconnected"),
    ]


SSE_ANSWER = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize(
    ("encoding", "body", "outcome"),
    [
        ("gzip", gzip.compress(SSE_ANSWER), "complete"),
        ("deflate", zlib.compress(SSE_ANSWER), "complete"),
        # an unterminated last event is not dispatched (SSE: an event ends at its blank
        # line; the openai SDK's SSEDecoder too): its [DONE] never arrived
        (None, SSE_ANSWER.removesuffix(b"\n\n"), "stream_incomplete"),
        (None, SSE_ANSWER.rsplit(b"data: [DONE]", 1)[0] + b"data: [DO", "stream_incomplete"),
    ],
    ids=["gzip", "deflate", "unterminated", "cut-in-the-last-event"],
)
def test_a_stream_passes_through_as_sent_and_is_read_for_its_ending(
    encoding: str | None, body: bytes, outcome: str
) -> None:
    """A compressed stream was read as text (its end never found) and the parser's leftover
    sent again after it (more than its content-length: a traceback, the attempt cancelled);
    an uncompressed one whose last event had no blank line after it got that event twice."""
    headers = [(b"content-type", b"text/event-stream"), (b"content-length", b"%d" % len(body))]
    if encoding:
        headers.append((b"content-encoding", encoding.encode()))

    async def upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    with serve(upstream) as base:
        session = make_session({"up": BackendSpec(provider="openai", upstream=base)})
        with serve_proxy_in_thread(session) as proxy:
            url = proxy.backend_url("up") + "/v1/chat/completions"
            with httpx.stream("POST", url, json=CHAT_STREAM) as response:
                raw = b"".join(response.iter_raw())
            (attempt,) = settled(session)
    assert raw == body  # byte for byte, once
    assert (attempt.outcome, attempt.error) == (outcome, None)
