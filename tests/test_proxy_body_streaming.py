"""Request bodies through the proxy: a large one streams upstream as it arrives, counted against
`--max-body` (413 midway, the upstream request aborted); one a fault or a recording needs is
read whole first, so the fault still sees a model named at the body's very end."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aichaos.intercept.backends import BackendSpec
from aichaos.proxy import serve_proxy_in_thread
from proxy_helpers import make_session, settled, wait_for
from servers import serve

INSPECT = 4096


class CountingUpstream:
    """Counts request body bytes as they arrive; answers what it got (length, sha256, the
    framing headers); notes requests that ended in a disconnect instead of a body end."""

    def __init__(self) -> None:
        self.received = 0
        self.aborted = 0
        self.completed = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.received = 0
        digest = hashlib.sha256()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.aborted += 1
                return
            chunk = message.get("body", b"")
            digest.update(chunk)
            self.received += len(chunk)
            if not message.get("more_body"):
                break
        self.completed += 1
        headers = dict(scope["headers"])
        answer = {
            "length": self.received,
            "sha256": digest.hexdigest(),
            "content-length": headers.get(b"content-length", b"").decode(),
            "transfer-encoding": headers.get(b"transfer-encoding", b"").decode(),
        }
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


@pytest.fixture
def upstream() -> Iterator[tuple[CountingUpstream, str]]:
    app = CountingUpstream()
    with serve(app) as base:
        yield app, base


def _body(size: int) -> bytes:
    return b'{"messages": [{"role": "user", "content": "' + b"x" * size + b'"}], "model": "gpt-x"}'


def _paced(body: bytes, app: CountingUpstream, first: int) -> Iterator[bytes]:
    """`body` in two parts: the rest only once the upstream got more than the inspected
    bytes of the first part (a proxy that buffered the body would never let that happen)."""
    yield body[:first]
    wait_for(lambda: app.received > INSPECT)
    yield body[first:]


def test_a_large_body_streams_upstream_as_it_arrives(
    upstream: tuple[CountingUpstream, str],
) -> None:
    app, base = upstream
    session = make_session({"up": BackendSpec(provider="openai", upstream=base)})
    with serve_proxy_in_thread(session, inspect_body=INSPECT, max_body=1 << 20) as proxy:
        url = proxy.backend_url("up") + "/v1/chat/completions"
        body = _body(200_000)
        expected = hashlib.sha256(body).hexdigest()
        chunked = httpx.post(url, content=_paced(body, app, 3 * INSPECT), timeout=60).json()
        assert (chunked["length"], chunked["sha256"]) == (len(body), expected)
        assert chunked["transfer-encoding"] == "chunked"  # length unknown: chunked upstream too
        sized = httpx.post(
            url,
            content=_paced(body, app, 3 * INSPECT),
            headers={"content-length": str(len(body))},
            timeout=60,
        ).json()
        assert (sized["length"], sized["sha256"]) == (len(body), expected)
        assert sized["content-length"] == str(len(body))
        # a small body is read whole first, as before, and sent with its length
        small = httpx.post(url, json={"model": "gpt-x", "messages": []}).json()
        assert small["content-length"] == str(small["length"])
    attempts = settled(session)
    assert [a.status for a in attempts] == [200, 200, 200]
    assert app.completed == 3


def test_a_body_over_the_limit_midway_aborts_the_upstream_request_with_a_413(
    upstream: tuple[CountingUpstream, str],
) -> None:
    app, base = upstream
    session = make_session({"up": BackendSpec(provider="openai", upstream=base)})
    with serve_proxy_in_thread(session, inspect_body=INSPECT, max_body=64 * 1024) as proxy:
        url = proxy.backend_url("up") + "/v1/chat/completions"
        answer = httpx.post(url, content=_paced(_body(100_000), app, 3 * INSPECT), timeout=60)
        assert answer.status_code == 413
        assert "64 MiB" not in answer.json()["error"]["message"]  # the limit in force: 0.0625
        assert "limit" in answer.json()["error"]["message"]
        wait_for(lambda: app.aborted == 1)
        assert app.completed == 0
        assert answer.headers["connection"] == "close"  # the rest of the body is never read
    assert [a.status for a in settled(session)] == [413]


def test_a_fault_that_may_act_gets_the_whole_body(upstream: tuple[CountingUpstream, str]) -> None:
    """The model is named at the end of a body past the inspected bytes: with a fault armed
    for the backend the body is read whole first, so the fault's `match: model` holds."""
    app, base = upstream
    fault = {"kind": "error", "status": 503, "match": {"model": "gpt-x"}}
    session = make_session({"up": BackendSpec(provider="openai", upstream=base)}, [fault])
    with serve_proxy_in_thread(session, inspect_body=INSPECT, max_body=1 << 20) as proxy:
        url = proxy.backend_url("up") + "/v1/chat/completions"
        answer = httpx.post(url, content=iter([_body(50_000)]), timeout=60)
        assert answer.status_code == 503
        session.engine.paused = True  # no fault may act: streamed, the model not seen
        paced = _paced(_body(50_000), app, 3 * INSPECT)
        assert httpx.post(url, content=paced, timeout=60).status_code == 200
    assert [a.model for a in settled(session)] == ["gpt-x", None]


def test_a_client_leaving_midway_aborts_the_upstream_request(
    upstream: tuple[CountingUpstream, str],
) -> None:
    app, base = upstream
    session = make_session({"up": BackendSpec(provider="openai", upstream=base)})
    left = threading.Event()

    def leave() -> Iterator[bytes]:
        yield _body(100_000)[: 3 * INSPECT]
        wait_for(lambda: app.received > INSPECT)
        left.set()
        raise ConnectionAbortedError("the client gives up")

    with serve_proxy_in_thread(session, inspect_body=INSPECT) as proxy:
        url = proxy.backend_url("up") + "/v1/chat/completions"
        with pytest.raises(ConnectionAbortedError):
            httpx.post(url, content=leave(), timeout=60)
        assert left.is_set()
        wait_for(lambda: app.aborted == 1)
        wait_for(
            lambda: (
                len(session.recorder.attempts) == 1
                and session.recorder.attempts[0].outcome is not None
            )
        )
    attempt = session.recorder.attempts[0]
    assert (attempt.outcome, attempt.error) == ("cancelled", "client_disconnected")
