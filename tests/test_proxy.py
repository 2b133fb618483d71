"""The chaos proxy on a real uvicorn server, driven by the official SDKs: mock and real
upstreams, streaming and not, faults through the proxy, an upstream that is down, and
the seam the experiment runner uses (`serve_proxy`, `x-aichaos-call`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aichaos.intercept.session import Session
from aichaos.mock import MockConfig, create_app
from aichaos.proxy import RunningProxy, serve_proxy, serve_proxy_in_thread
from proxy_helpers import ScriptedUpstream, make_session, settled, wait_for
from servers import serve

CLAUDE = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def mock_upstream() -> Iterator[str]:
    """The mock served over HTTP: a "real" upstream the proxy forwards to."""
    with serve(create_app(MockConfig(seed=3))) as url:
        yield url


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[ScriptedUpstream, str]]:
    app = ScriptedUpstream()
    with serve(app) as url:
        yield app, url


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def proxy(mock_upstream: str, scripted: tuple[ScriptedUpstream, str]) -> Iterator[RunningProxy]:
    session = make_session(
        {
            "openai": "openai",
            "claude": "anthropic",
            "up-openai": {"provider": "openai", "upstream": mock_upstream},
            "up-claude": {"provider": "anthropic", "upstream": mock_upstream},
            "up-gemini": {"provider": "gemini", "upstream": mock_upstream},
            "scripted": {"provider": "openai", "upstream": scripted[1]},
            "down": {"provider": "openai", "upstream": f"http://127.0.0.1:{_closed_port()}"},
            "down-claude": {
                "provider": "anthropic",
                "upstream": f"http://127.0.0.1:{_closed_port()}",
            },
        },
        seed=3,
    )
    with serve_proxy_in_thread(session) as running:
        yield running


@pytest.fixture
def session(proxy: RunningProxy) -> Iterator[Session]:
    proxy.session.engine.clear()
    proxy.session.engine.paused = False
    proxy.session.recorder.clear()
    yield proxy.session
    proxy.session.engine.clear()


def oai(proxy: RunningProxy, backend: str = "openai", **kw: Any) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=proxy.backend_url(backend) + "/v1", api_key="sk-test", **kw)


def claude(proxy: RunningProxy, backend: str = "claude", **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=proxy.backend_url(backend), api_key="sk-ant", **kw)


def chat(client: openai.OpenAI, **kw: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **kw)  # type: ignore[arg-type]


# --- pass-through with the official SDKs -----------------------------------------
@pytest.mark.parametrize("backend", ["openai", "up-openai"])
def test_openai_sdk_through_the_proxy(
    proxy: RunningProxy, session: Session, mock_upstream: str, backend: str
) -> None:
    client = oai(proxy, backend)
    answer = chat(client)
    streamed = "".join(
        chunk.choices[0].delta.content or "" for chunk in chat(client, stream=True) if chunk.choices
    )
    direct = openai.OpenAI(base_url=mock_upstream + "/v1", api_key="x", max_retries=0)
    expected = chat(direct).choices[0].message.content
    assert answer.choices[0].message.content == expected  # same seed, same prompt, same text
    assert streamed == expected
    attempts = settled(session)
    assert [(a.backend, a.status, a.error, a.stream) for a in attempts] == [
        (backend, 200, None, False),
        (backend, 200, None, True),
    ]
    assert attempts[0].output_tokens and attempts[1].ttft is not None  # metered as it passed


@pytest.mark.parametrize("backend", ["claude", "up-claude"])
def test_anthropic_sdk_through_the_proxy(
    proxy: RunningProxy, session: Session, backend: str
) -> None:
    client = claude(proxy, backend)
    message = client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert message.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert [a.status for a in settled(session)] == [200, 200]


def test_responses_api_stream_through_the_proxy(proxy: RunningProxy, session: Session) -> None:
    client = oai(proxy, "up-openai")
    events = [e.type for e in client.responses.create(model="gpt-4.1", input="hi", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert settled(session)[0].path == "/v1/responses"


def test_gemini_stream_through_the_proxy(proxy: RunningProxy, session: Session) -> None:
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=sk-in-query"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    with httpx.stream("POST", proxy.backend_url("up-gemini") + path, json=body) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200 and len(events) >= 2
    assert json.loads(events[-1][6:])["candidates"][0]["finishReason"] == "STOP"
    attempt = settled(session)[0]
    assert attempt.provider == "gemini" and attempt.stream and attempt.ttft is not None
    assert "sk-in-query" not in json.dumps(attempt.to_dict())  # the path is kept, not the query


# --- faults through the proxy ------------------------------------------------------
def test_error_fault_retried_by_the_sdk(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("error", backend="up-openai", status=503))
    with pytest.raises(openai.InternalServerError) as caught:
        chat(oai(proxy, "up-openai", max_retries=1))
    assert caught.value.status_code == 503
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]
    attempts = settled(session)
    assert [(a.status, a.faults) for a in attempts] == [(503, ["error(503)"])] * 2


def test_outage_on_anthropic_is_overloaded(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("outage", backend="claude"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude(proxy).messages.create(model=CLAUDE, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_rate_limit_retry_after_is_honoured(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("rate_limit", backend="openai", retry_after=0.4, first=1))
    started = time.monotonic()
    answer = chat(oai(proxy, max_retries=2))
    elapsed = time.monotonic() - started
    first, second = settled(session)
    assert (first.status, second.status) == (429, 200)
    assert answer.choices[0].message.content
    assert second.started - first.started >= 0.39  # the SDK waited as told, not its backoff
    assert elapsed >= 0.4


def test_latency_fault_delays_the_answer(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("latency", backend="openai", delay=0.3))
    started = time.monotonic()
    chat(oai(proxy))
    assert time.monotonic() - started >= 0.3
    assert settled(session)[0].faults == ["latency"]


def _raw_exchange(proxy: RunningProxy, path: str, body: bytes, timeout: float = 5.0) -> bytes:
    """Send one request on a bare socket and read until the server closes it."""
    host, port = proxy.base_url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_connection_reset_closes_the_tcp_connection(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("connection_reset", backend="up-openai"))
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    assert _raw_exchange(proxy, "/up-openai/v1/chat/completions", body) == b""  # no 500: EOF
    with pytest.raises(openai.APIConnectionError) as caught:
        chat(oai(proxy, "up-openai", max_retries=1))
    assert not isinstance(caught.value, openai.APITimeoutError)
    wait_for(lambda: [a.duration is not None for a in session.recorder.attempts] == [True] * 3)
    assert all(a.error == "connection_reset" for a in settled(session))
    assert proxy.stats.inflight == 0


def test_connection_refused_closes_without_an_answer(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("connection_refused", backend="openai"))
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    assert _raw_exchange(proxy, "/openai/v1/chat/completions", body) == b""
    wait_for(lambda: session.recorder.attempts[0].duration is not None)
    assert settled(session)[0].error == "connection_refused"


def test_connection_reset_after_bytes_cuts_the_body(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("connection_reset", backend="up-openai", after_bytes=20))
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    received = _raw_exchange(proxy, "/up-openai/v1/chat/completions", body)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"0\r\n\r\n" not in rest  # the chunked body never ends: the connection dropped
    assert b"20\r\n" not in rest and len(rest) < 40


def test_timeout_holds_the_connection_until_the_client_gives_up(
    proxy: RunningProxy, session: Session
) -> None:
    session.engine.add(_fault("timeout", backend="openai"))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat(oai(proxy, timeout=0.5))
    assert time.monotonic() - started >= 0.5
    wait_for(lambda: session.recorder.attempts[0].duration is not None)
    assert settled(session)[0].error == "timeout"
    assert proxy.stats.inflight == 0


def test_timeout_with_a_limit_drops_the_connection(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("timeout", backend="openai", hang=0.2))
    started = time.monotonic()
    with pytest.raises(openai.APIConnectionError) as caught:
        chat(oai(proxy, timeout=5.0))
    assert not isinstance(caught.value, openai.APITimeoutError)  # dropped, not timed out
    assert time.monotonic() - started >= 0.2


def test_stream_cut_drop_mid_stream(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("stream_cut", backend="up-openai", after=2, mode="drop"))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chat(oai(proxy, "up-openai"), stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 2
    wait_for(lambda: session.recorder.attempts[0].duration is not None)
    attempt = settled(session)[0]
    assert (attempt.status, attempt.error, attempt.faults) == (
        200,
        "connection_reset",
        ["stream_cut(drop)"],
    )


def test_stream_cut_error_event(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("stream_cut", backend="openai", after=1, mode="error_event"))
    with pytest.raises(openai.APIError) as caught:
        list(chat(oai(proxy), stream=True))
    assert "error" in str(caught.value).lower()


def test_slow_stream_paces_tokens(proxy: RunningProxy, session: Session) -> None:
    session.engine.add(_fault("slow_stream", backend="up-openai", ttft=0.3, inter_token=0.0))
    started = time.monotonic()
    first = None
    for chunk in chat(oai(proxy, "up-openai"), stream=True):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic() - started
    assert first is not None and first >= 0.3
    assert settled(session)[0].ttft >= 0.3  # type: ignore[operator]


def test_body_edit_on_a_compressing_upstream(proxy: RunningProxy, session: Session) -> None:
    """An edited answer asks the upstream for identity encoding, so the edit can read it."""
    session.engine.add(_fault("truncated", backend="up-openai"))
    answer = chat(oai(proxy, "up-openai"))
    assert answer.choices[0].finish_reason == "length"


# --- upstream down -------------------------------------------------------------------
def test_upstream_down_is_a_provider_shaped_502(proxy: RunningProxy, session: Session) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        chat(oai(proxy, "down"))
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]
    assert "cannot be reached" in caught.value.body["message"]  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as claude_caught:
        claude(proxy, "down-claude").messages.create(
            model=CLAUDE,
            max_tokens=8,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    assert claude_caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert chat(oai(proxy, "up-openai")).choices  # the proxy stays up
    assert [a.status for a in settled(session)] == [502, 502, 200]
    assert proxy.stats.upstream_errors >= 2


def test_unknown_backend_is_a_provider_shaped_404(proxy: RunningProxy) -> None:
    response = httpx.post(proxy.base_url + "/nope/v1/chat/completions", json={})
    assert response.status_code == 404
    assert "route as /<backend>/<path>" in response.json()["error"]["message"]


# --- forwarding details --------------------------------------------------------------
def test_request_forwarded_unchanged_and_call_header_stripped(
    proxy: RunningProxy, session: Session, scripted: tuple[ScriptedUpstream, str]
) -> None:
    upstream, _ = scripted
    upstream.requests.clear()
    response = httpx.put(
        proxy.backend_url("scripted") + "/v1/echo/a%2Fb?x=1&x=2&key=sec",
        content=b"\x00\x01payload",
        headers=[
            ("authorization", "Bearer sk-secret-1"),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("x-aichaos-call", "call-42"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "hop-only"),
        ],
    )
    assert response.status_code == 200
    seen = upstream.requests[-1]
    assert (seen["method"], seen["raw_path"], seen["query"]) == (
        "PUT",
        b"/v1/echo/a%2Fb",
        b"x=1&x=2&key=sec",
    )
    assert seen["body"] == b"\x00\x01payload"
    names = [k for k, _ in seen["headers"]]
    assert (b"authorization", b"Bearer sk-secret-1") in seen["headers"]  # forwarded
    assert [v for k, v in seen["headers"] if k == b"x-multi"] == [b"one", b"two"]
    assert b"x-aichaos-call" not in names and b"x-hop" not in names
    host = dict(seen["headers"])[b"host"].decode()
    assert host == scripted[1].removeprefix("http://")
    attempt = settled(session)[-1]
    assert attempt.call_id == "call-42"
    assert "sk-secret-1" not in json.dumps(attempt.to_dict())
    assert "sk-secret-1" not in json.dumps(proxy.stats.snapshot())


# --- the seam the experiment runner uses -------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_serve_proxy_seam_records_attempts_per_call(mock_upstream: str) -> None:
    session = make_session(
        {"openai": "openai", "real": {"provider": "openai", "upstream": mock_upstream}},
        faults=[{"kind": "outage", "backend": "real", "first": 1}],
    )
    async with serve_proxy(session, host="127.0.0.1", port=0) as proxy:
        assert proxy.base_url.startswith("http://127.0.0.1:")
        assert proxy.backend_url("real") == proxy.base_url + "/real"
        client = openai.AsyncOpenAI(
            base_url=proxy.backend_url("real") + "/v1",
            api_key="sk",
            max_retries=2,
            default_headers={"x-aichaos-call": "call-1"},
        )
        answer = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        other = openai.AsyncOpenAI(
            base_url=proxy.backend_url("openai") + "/v1",
            api_key="sk",
            default_headers={"x-aichaos-call": "call-2"},
        )
        await other.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        await client.close()
        await other.close()
    assert answer.choices[0].message.content
    calls = [(a.call_id, a.backend, a.status) for a in settled(session)]
    assert calls == [("call-1", "real", 500), ("call-1", "real", 200), ("call-2", "openai", 200)]
    with pytest.raises(KeyError):
        proxy.backend_url("nope")


@pytest.mark.anyio
async def test_serve_proxy_exits_promptly_with_a_hung_request() -> None:
    import anyio

    session = make_session({"openai": "openai"}, faults=[{"kind": "timeout"}])
    # The request hangs for ever (no client timeout): only the proxy's shutdown_timeout can
    # end it. The deadline is a guard against a hang, far above the 1 s it is given.
    with anyio.fail_after(60):
        async with serve_proxy(session, shutdown_timeout=1) as proxy:
            client = httpx.AsyncClient(timeout=None)
            async with anyio.create_task_group() as group:
                group.start_soon(client.post, proxy.backend_url("openai") + "/v1/chat/completions")
                while not session.recorder.attempts:  # the request is in the proxy
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()
            await client.aclose()
    assert session.recorder.attempts[0].duration is not None  # finished, not leaked


# --- an app in another process ----------------------------------------------------------
APP = textwrap.dedent(
    """
    import openai
    client = openai.OpenAI()   # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}]
    )
    print("ANSWER", answer.choices[0].message.content)
    """
)


def test_subprocess_app_through_the_proxy(
    proxy: RunningProxy, session: Session, tmp_path: Path
) -> None:
    session.engine.add(_fault("outage", backend="openai", first=1))
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {
        **os.environ,
        "OPENAI_BASE_URL": proxy.backend_url("openai") + "/v1",
        "OPENAI_API_KEY": "sk-from-env",
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ANSWER ")
    assert [a.status for a in settled(session)] == [500, 200]  # the SDK retried


def _fault(kind: str, **params: Any) -> Any:
    from aichaos import fault

    return fault(kind, **params)
