"""In-process interception as a whole, driven by the real SDKs and real sockets.

Seeds and probabilities through the SDK, hosts that no backend claims, restoring the
patched clients, nested injections, call scopes, secrets in records, respx upstreams, and a
real upstream server (the embedded mock over uvicorn) with faults applied on top.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import anyio
import httpx
import httpx2
import openai
import pytest
import respx

import aichaos
from aichaos.intercept import BackendSpec, patch
from aichaos.intercept.transports import AsyncInterceptTransport, InterceptTransport
from aichaos.mock import MockConfig, create_app
from aichaos.records import Attempt
from sdk_support import API_KEY, CLAUDE, GPT, MESSAGES, WEATHER, words
from sdk_waits import SLACK
from servers import serve

CLIENT_CLASSES = [httpx.Client, httpx.AsyncClient, httpx2.Client, httpx2.AsyncClient]


def ask(client: openai.OpenAI, **kw: Any) -> Any:
    return client.chat.completions.create(model=GPT, messages=MESSAGES, **kw)  # type: ignore[arg-type]


# --- seeds and probabilities ------------------------------------------------------------------


def _run_sequence(seed: int) -> tuple[list[tuple[int | None, list[str]]], list[str]]:
    """Twelve calls through the SDK (retries included) under probabilistic faults."""
    faults = [
        {"kind": "rate_limit", "probability": 0.4, "retry_after": 0.01},
        {"kind": "truncated", "probability": 0.5, "after": 3},
        {"kind": "corrupt_text", "probability": 0.5, "mode": "scramble"},
    ]
    texts: list[str] = []
    with openai.OpenAI(api_key=API_KEY) as client, aichaos.inject(faults, seed=seed) as chaos:
        for index in range(12):
            try:
                texts.append(
                    client.chat.completions.create(
                        model=GPT,
                        messages=[{"role": "user", "content": f"question {index}"}],
                    )
                    .choices[0]
                    .message.content
                    or ""
                )
            except openai.RateLimitError:
                texts.append("<rate limited>")
    return [(a.status, a.faults) for a in chaos.attempts], texts


def test_same_seed_same_faults_different_seed_different_faults() -> None:
    attempts, texts = _run_sequence(seed=11)
    again_attempts, again_texts = _run_sequence(seed=11)
    other_attempts, other_texts = _run_sequence(seed=12)
    assert attempts == again_attempts
    assert texts == again_texts  # scrambled letters are seeded too
    assert (other_attempts, other_texts) != (attempts, texts)
    kinds = {label.split("(")[0] for _, faults in attempts for label in faults}
    assert kinds == {"rate_limit", "truncated", "corrupt_text"}  # all three were drawn
    assert len(attempts) > 12  # rate-limited calls were retried by the SDK


def test_probability_stays_within_a_binomial_bound() -> None:
    calls, probability = 300, 0.3
    failures = 0
    with (
        openai.OpenAI(api_key=API_KEY, max_retries=0) as client,
        aichaos.inject([{"kind": "outage", "probability": probability}], seed=3) as chaos,
    ):
        for _ in range(calls):
            try:
                ask(client)
            except openai.InternalServerError:
                failures += 1
    mean = calls * probability
    bound = 4.5 * math.sqrt(calls * probability * (1 - probability))  # fails ~1 in 150000
    assert abs(failures - mean) <= bound
    assert len(chaos.attempts) == calls
    assert sum(1 for a in chaos.attempts if a.faults == ["outage"]) == failures


# --- hosts that no backend claims ------------------------------------------------------------


class Echo:
    """A plain ASGI endpoint that records what it received and answers a fixed, odd reply."""

    BODY = b'{"echo": true, "note": "not an LLM"}'

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append({"path": scope["path"], "headers": headers, "body": body})
        await send(
            {
                "type": "http.response.start",
                "status": 207,
                "headers": [(b"content-type", b"application/x-echo"), (b"x-echo", b"yes")],
            }
        )
        await send({"type": "http.response.body", "body": self.BODY})


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, Echo]]:
    app = Echo()
    with serve(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[str]]]:
    """The embedded mock over uvicorn, and the paths it served."""
    app = create_app(MockConfig(seed=5))
    served: list[str] = []

    async def counting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            served.append(scope["path"])
        await app(scope, receive, send)

    with serve(counting) as url:
        yield url, served


REQUEST_BODY = json.dumps({"model": GPT, "messages": MESSAGES, "stream": False}).encode()


def _assert_untouched(response: Any, app: Echo, before: int) -> None:
    assert response.status_code == 207
    assert response.headers["x-echo"] == "yes"
    assert response.content == Echo.BODY
    assert len(app.requests) == before + 1
    seen = app.requests[-1]
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"] == REQUEST_BODY
    assert seen["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert seen["headers"]["x-custom"] == "kept"


def test_undeclared_hosts_pass_through_untouched(
    echo: tuple[str, Echo], upstream: tuple[str, list[str]]
) -> None:
    url, app = echo
    headers = {"authorization": f"Bearer {API_KEY}", "x-custom": "kept"}
    backends = {
        # Its upstream is on 127.0.0.1 too, but it claims api.openai.com only.
        "openai": BackendSpec(provider="openai", upstream=upstream[0], host="api.openai.com"),
        "anthropic": "anthropic",
    }
    # Everything at once: had any applied, the outage would have answered 503.
    everything: list[dict[str, Any]] = [
        {"kind": "outage"},
        {"kind": "latency", "delay": 5},
        {"kind": "malformed"},
    ]
    with aichaos.inject(everything, backends=backends) as chaos:
        for cls in (httpx.Client, httpx2.Client):
            with cls() as client:
                before = len(app.requests)
                response = client.post(
                    f"{url}/v1/chat/completions", content=REQUEST_BODY, headers=headers
                )
                _assert_untouched(response, app, before)
                transport = client._transport_for_url(client._merge_url(url))
                assert not isinstance(transport, InterceptTransport)

        async def async_calls() -> None:
            for cls in (httpx.AsyncClient, httpx2.AsyncClient):
                async with cls() as client:
                    before = len(app.requests)
                    response = await client.post(
                        f"{url}/v1/chat/completions", content=REQUEST_BODY, headers=headers
                    )
                    _assert_untouched(response, app, before)

        anyio.run(async_calls)
    assert chaos.attempts == []  # nothing was recorded: those were not backend calls


def test_claimed_hosts_are_intercepted_on_every_client_class() -> None:
    with aichaos.inject():
        for cls in (httpx.Client, httpx2.Client):
            with cls() as client:
                transport = client._transport_for_url(client._merge_url("https://api.openai.com"))
                assert isinstance(transport, InterceptTransport)
                assert not isinstance(transport, AsyncInterceptTransport)
        for acls in (httpx.AsyncClient, httpx2.AsyncClient):
            aclient: Any = acls()
            transport = aclient._transport_for_url(aclient._merge_url("https://api.anthropic.com"))
            assert isinstance(transport, AsyncInterceptTransport)


# --- restoring the patched clients ------------------------------------------------------------


def _originals() -> list[Callable[..., Any]]:
    return [cls.__dict__["_transport_for_url"] for cls in CLIENT_CLASSES]


def test_leaving_the_block_restores_every_client_class() -> None:
    before = _originals()
    with aichaos.inject():
        patched = _originals()
        assert all(new is not old for new, old in zip(patched, before, strict=True))
        assert patch.is_installed()
    assert _originals() == before
    assert not patch.is_installed()


def test_restored_when_the_block_raises() -> None:
    before = _originals()
    with pytest.raises(RuntimeError, match="app failed"), aichaos.inject():
        raise RuntimeError("app failed")
    assert _originals() == before
    assert not patch.is_installed()


def test_restored_after_async_with_that_raises() -> None:
    before = _originals()

    async def main() -> None:
        async with (
            aichaos.inject([{"kind": "outage"}]),
            openai.AsyncOpenAI(api_key=API_KEY, max_retries=0) as client,
        ):
            await client.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]

    with pytest.raises(openai.InternalServerError):
        anyio.run(main)
    assert _originals() == before


def test_clients_created_inside_work_normally_after() -> None:
    with aichaos.inject([{"kind": "outage"}]):
        client = httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(204)))
    response = client.get("https://api.openai.com/v1/models")
    assert response.status_code == 204  # its own transport again: no outage, no mock
    client.close()


# --- nested injections ---------------------------------------------------------------------


def test_nested_injections() -> None:
    before = _originals()
    with openai.OpenAI(api_key=API_KEY, max_retries=0) as client:
        with aichaos.inject([{"kind": "outage"}]) as outer:
            with pytest.raises(openai.InternalServerError):
                ask(client)
            with aichaos.inject([{"kind": "truncated", "after": 2}]) as inner:
                choice = ask(client).choices[0]  # the innermost injection decides
                assert choice.finish_reason == "length"
                assert len(words(choice.message.content or "")) == 2
            assert patch.is_installed()  # the outer one is still active
            with pytest.raises(openai.InternalServerError):
                ask(client)
        http = client._client
        transport = http._transport_for_url(http._merge_url("https://api.openai.com/v1"))
        assert not isinstance(transport, InterceptTransport)  # the real API again
    assert [a.faults for a in outer.attempts] == [["outage"], ["outage"]]
    assert [a.faults for a in inner.attempts] == [["truncated"]]
    assert _originals() == before


# --- call scopes ---------------------------------------------------------------------------


def test_attempts_are_tied_to_their_call() -> None:
    fault = {"kind": "rate_limit", "first": 2, "retry_after": 0.01}
    with openai.OpenAI(api_key=API_KEY) as client, aichaos.inject([fault]) as chaos:
        with aichaos.call_scope("first") as first:
            ask(client)  # two 429s, then a success: three attempts
        with aichaos.call_scope() as second:
            ask(client)
        ask(client)  # outside any call scope
    assert [a.status for a in first.attempts] == [429, 429, 200]
    assert {a.call_id for a in first.attempts} == {"first"}
    assert first.served_by == "openai"
    assert [a.call_id for a in second.attempts] == [second.id]
    assert second.id != "first"
    assert chaos.attempts[-1].call_id is None
    assert len(chaos.attempts) == 5


def test_call_scopes_in_threads_do_not_mix() -> None:
    fault = {"kind": "rate_limit", "first": 4, "retry_after": 0.05}
    scopes: dict[str, list[Attempt]] = {}
    errors: list[BaseException] = []

    def work(name: str, client: openai.OpenAI) -> None:
        try:
            with aichaos.call_scope(name) as scope:
                ask(client)
            scopes[name] = scope.attempts
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with openai.OpenAI(api_key=API_KEY) as client, aichaos.inject([fault]) as chaos:
        threads = [threading.Thread(target=work, args=(f"t{i}", client)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert sum(len(attempts) for attempts in scopes.values()) == len(chaos.attempts) == 8
    for name, attempts in scopes.items():
        assert {a.call_id for a in attempts} == {name}
        assert attempts[-1].status == 200


def test_fault_mistakes_are_validate_messages() -> None:
    """`aichaos.inject` and `add` say what `aichaos validate` says (the key, what is wrong,
    "did you mean"), as a `FaultSpecError` (a `ValueError`), not pydantic's raw report."""
    from aichaos.faults.spec import FaultSpecError

    cases = [
        ({"kind": "slow_stream", "delay": "1s"}, "unknown key 'delay'; expected one of"),
        ({"kind": "outag"}, "did you mean 'outage'"),
        ({"kind": "error", "status": "abc"}, "fault 'error': status: "),
        ({"kind": "outage", "backend": "opneai"}, "did you mean 'openai'"),
    ]
    for fault, message in cases:
        with pytest.raises(FaultSpecError, match=re.escape(message)) as refused:
            aichaos.inject([fault])
        assert "pydantic" not in str(refused.value)
    injection = aichaos.inject()
    with pytest.raises(FaultSpecError, match="unknown key 'after'"):
        injection.add({"kind": "outage", "after": 3})


def test_aichaos_fault_mistakes_are_validate_messages() -> None:
    """`aichaos.fault(kind, ...)` builds a fault as `inject` does: a typo is a
    `FaultSpecError` with "did you mean", not a bare KeyError."""
    from aichaos.faults.spec import FaultSpecError

    with pytest.raises(FaultSpecError, match=re.escape("unknown fault kind 'outge'")) as refused:
        aichaos.fault("outge", backend="openai")
    assert "did you mean 'outage'" in str(refused.value)
    with pytest.raises(FaultSpecError, match=re.escape("unknown key 'dealy'")):
        aichaos.fault("latency", dealy="1s")
    assert aichaos.fault("outage", backend="openai").kind == "outage"


def test_a_bad_backend_name_is_refused_as_the_experiment_loader_refuses_it() -> None:
    """The proxy routes by `/<backend>/`: `inject` takes no name the YAML would refuse,
    and says so in the same words."""
    from aichaos.experiment import ExperimentError, parse_experiment

    text = (
        "name: x\ntarget: {python: tiny_app:answer}\nload: {requests: 1, prompts: [hi]}\n"
        "backends: {'bad name!': openai}\n"
    )
    with pytest.raises(ExperimentError) as loaded:
        parse_experiment(text, file="exp.yaml")
    expected = next(p.message for p in loaded.value.problems if p.path == ("backends",))
    with pytest.raises(ValueError) as refused:
        aichaos.inject([], backends={"bad name!": "openai"})
    assert str(refused.value) == expected
    assert "start with a letter" in expected


# --- secrets -------------------------------------------------------------------------------


def test_records_carry_no_secrets() -> None:
    secret = "sk-live-PLANTED-0f9e8d7c6b5a"
    backends = {
        "openai": "openai",
        "anthropic": "anthropic",
        "gateway": BackendSpec(provider="openai", upstream=f"http://127.0.0.1:9/?key={secret}"),
    }
    with pytest.raises(ValueError, match="carries credentials") as refused:
        BackendSpec(provider="openai", upstream=f"http://svc:{secret}@127.0.0.1:9/")
    assert secret not in str(refused.value)  # the error does not repeat it
    faults: list[dict[str, Any]] = [
        {"kind": "rate_limit", "first": 1, "retry_after": 0.01, "backend": "openai"},
        # Anthropic's retry-after is whole seconds: without one the SDK backs off < 0.5 s
        {"kind": "rate_limit", "first": 1, "retry_after": None, "backend": "anthropic"},
        {"kind": "connection_refused", "backend": "gateway"},
    ]
    gateway = openai.OpenAI(api_key=secret, base_url="http://127.0.0.1:9/v1", max_retries=0)
    with (
        openai.OpenAI(api_key=secret) as client,
        anthropic.Anthropic(api_key=secret) as claude,
        gateway,
        aichaos.inject(faults, backends=backends) as chaos,
    ):
        ask(
            client,
            extra_headers={"x-api-key": secret, "OpenAI-Organization": secret},
            extra_query={"key": secret},
            user=secret,
        )
        claude.messages.create(
            model=CLAUDE,
            max_tokens=64,
            messages=[{"role": "user", "content": f"my key is {secret}"}],
        )
        with pytest.raises(openai.APIConnectionError):
            ask(gateway)
    assert [a.backend for a in chaos.attempts] == ["openai"] * 2 + ["anthropic"] * 2 + ["gateway"]
    for attempt in chaos.attempts:
        assert secret not in repr(attempt)
        assert secret not in json.dumps(attempt.to_dict())
    assert chaos.attempts[-1].upstream == "http://127.0.0.1:9"


# --- respx upstreams ------------------------------------------------------------------------

UPSTREAM = "https://api.example-llm.test"
CANNED = {
    "id": "chatcmpl-canned",
    "object": "chat.completion",
    "created": 1760000000,
    "model": GPT,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "one two three four five six"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
}


def _sse(*payloads: Any) -> bytes:
    return b"".join(
        f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n".encode() for p in payloads
    )


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-canned",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": GPT,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _tool_start(index: int, name: str) -> dict[str, Any]:
    call = {"index": index, "id": f"call_{index}", "type": "function"}
    return _chunk({"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]})


def _tool_args(index: int, fragment: str) -> dict[str, Any]:
    return _chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})


TWO_TOOL_CALLS = _sse(
    _chunk({"role": "assistant", "content": None}),
    _tool_start(0, "get_weather"),
    _tool_args(0, '{"city": '),
    _tool_args(0, '"Paris"}'),
    _tool_start(1, "get_time"),
    _tool_args(1, '{"zone": '),
    _tool_args(1, '"CET"}'),
    _chunk({}, "tool_calls"),
    "[DONE]",
)


@pytest.fixture
def respx_upstream() -> Iterator[tuple[respx.MockRouter, openai.OpenAI]]:
    with respx.mock(base_url=UPSTREAM, assert_all_called=False) as router:
        router.post("/v1/chat/completions", json__stream=True).respond(
            200, headers={"content-type": "text/event-stream"}, content=TWO_TOOL_CALLS
        )
        router.post("/v1/chat/completions").respond(200, json=CANNED)
        client = openai.OpenAI(
            api_key=API_KEY,
            base_url=f"{UPSTREAM}/v1",
            http_client=httpx.Client(),  # type: ignore[arg-type]  # a plain httpx client works
        )
        yield router, client
        client.close()


def test_respx_route_as_upstream(respx_upstream: tuple[respx.MockRouter, openai.OpenAI]) -> None:
    router, client = respx_upstream
    backends = {"llm": {"provider": "openai", "upstream": UPSTREAM}}
    with aichaos.inject(backends=backends) as chaos:
        completion = ask(client)
    assert completion.id == "chatcmpl-canned"  # the upstream's answer, untouched
    assert completion.choices[0].message.content == "one two three four five six"
    assert router.calls.call_count == 1
    assert router.calls.last.request.headers["authorization"] == f"Bearer {API_KEY}"
    assert chaos.attempts[0].upstream == UPSTREAM
    assert (chaos.attempts[0].input_tokens, chaos.attempts[0].output_tokens) == (5, 6)


def test_faults_apply_on_top_of_a_respx_upstream(
    respx_upstream: tuple[respx.MockRouter, openai.OpenAI],
) -> None:
    router, client = respx_upstream
    backends = {"llm": {"provider": "openai", "upstream": UPSTREAM}}
    faults = [
        {"kind": "rate_limit", "first": 1, "retry_after": 0.05},
        {"kind": "truncated", "after": 2},
    ]
    with aichaos.inject(faults, backends=backends) as chaos:
        choice = ask(client).choices[0]
    assert (choice.finish_reason, choice.message.content) == ("length", "one two")
    assert [a.status for a in chaos.attempts] == [429, 200]
    assert router.calls.call_count == 1  # the 429 never reached the upstream


def test_stream_faults_on_a_respx_upstream_act_per_tool_call(
    respx_upstream: tuple[respx.MockRouter, openai.OpenAI],
) -> None:
    _, client = respx_upstream
    backends = {"llm": {"provider": "openai", "upstream": UPSTREAM}}

    def calls(fault: dict[str, Any] | None) -> dict[int, tuple[str, str]]:
        with aichaos.inject([fault] if fault else [], backends=backends):
            found: dict[int, tuple[str, str]] = {}
            for chunk in ask(client, stream=True):
                for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    name, args = found.get(call.index, ("", ""))
                    function = call.function
                    assert function is not None
                    found[call.index] = (
                        name + (function.name or ""),
                        args + (function.arguments or ""),
                    )
            return found

    assert calls(None) == {
        0: ("get_weather", '{"city": "Paris"}'),
        1: ("get_time", '{"zone": "CET"}'),
    }
    assert calls({"kind": "bad_tool_call", "variant": "missing_arguments"}) == {
        0: ("get_weather", "{}"),
        1: ("get_time", "{}"),
    }
    assert calls({"kind": "bad_tool_call", "variant": "invalid_json"}) == {
        0: ("get_weather", '{{"city": "Paris"}'),
        1: ("get_time", '{{"zone": "CET"}'),
    }


# --- a real upstream over the network ---------------------------------------------------------


def test_faults_on_top_of_a_real_upstream(upstream: tuple[str, list[str]]) -> None:
    url, served = upstream
    backends = {"openai": BackendSpec(provider="openai", upstream=url, host="api.openai.com")}
    with openai.OpenAI(api_key=API_KEY) as client:  # unmodified: talks to api.openai.com
        with aichaos.inject(backends=backends) as clean:
            text = ask(client).choices[0].message.content or ""
        before = len(served)
        with aichaos.inject([{"kind": "truncated", "after": 3}], backends=backends):
            choice = ask(client).choices[0]
        with (
            aichaos.inject([{"kind": "outage"}], backends=backends),
            pytest.raises(openai.InternalServerError),
        ):
            ask(client.with_options(max_retries=0))
    assert clean.attempts[0].upstream == url
    assert (choice.finish_reason, choice.message.content) == ("length", " ".join(words(text)[:3]))
    assert served[before:] == ["/v1/chat/completions"]  # the outage never reached it


def test_stream_faults_act_event_by_event_on_a_real_upstream() -> None:
    tps, ttft = 40, 0.2
    with serve(create_app(MockConfig(seed=5, tokens_per_second=tps))) as url:
        backends = {"openai": BackendSpec(provider="openai", upstream=url, host="api.openai.com")}
        fault = {"kind": "slow_stream", "ttft": ttft, "inter_token": 0}
        with openai.OpenAI(api_key=API_KEY) as client, aichaos.inject([fault], backends=backends):
            started = time.perf_counter()
            stamps = [
                time.perf_counter()
                for chunk in ask(client, stream=True)
                if chunk.choices and chunk.choices[0].delta.content
            ]
    assert len(stamps) >= 8
    assert stamps[0] - started >= ttft - SLACK  # the late first token
    # The upstream needs (n - 1) / tps seconds for the rest of its tokens: they keep coming
    # after the first one, which was not held back until the upstream had finished.
    upstream_rest = (len(stamps) - 1) / tps
    assert stamps[-1] - stamps[0] >= upstream_rest - ttft - 0.05


def test_stream_cut_on_a_real_anthropic_upstream(upstream: tuple[str, list[str]]) -> None:
    url, _ = upstream
    backends = {"claude": BackendSpec(provider="anthropic", upstream=url, host="api.anthropic.com")}
    fault = {"kind": "stream_cut", "mode": "drop", "after": 2}
    with anthropic.Anthropic(api_key=API_KEY) as client:
        with aichaos.inject([fault], backends=backends) as chaos:
            stream: Any = client.messages.create(
                model=CLAUDE,
                max_tokens=256,
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
            )
            deltas: list[Any] = []
            with pytest.raises(httpx2.RemoteProtocolError):
                for event in stream:
                    if event.type == "content_block_delta":
                        deltas.append(event)
        with aichaos.inject(backends=backends):  # the upstream connection was released
            message = client.messages.create(
                model=CLAUDE,
                max_tokens=256,
                messages=MESSAGES,  # type: ignore[arg-type]
            )
    assert len(deltas) == 2
    assert chaos.attempts[0].error == "httpx2.RemoteProtocolError"
    assert chaos.attempts[0].upstream == url
    assert message.stop_reason == "end_turn"


# --- Gemini (its SDK is not installed here: checked on the wire) ------------------------------

GEMINI_STREAM = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    ":streamGenerateContent?alt=sse"
)


@pytest.mark.parametrize("variant", [None, "invalid_json", "unknown_tool", "missing_arguments"])
def test_gemini_stream_bad_tool_call_edits_the_whole_call(variant: str | None) -> None:
    """Gemini streams a call's arguments whole, with the call: the fault edits that event.
    Invalid JSON never reaches the wire: the stream ends with MALFORMED_FUNCTION_CALL."""
    body = {
        "contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}],
    }
    faults = [{"kind": "bad_tool_call", "variant": variant}] if variant else []
    with aichaos.inject(faults) as chaos, httpx2.Client() as client:
        response = client.post(GEMINI_STREAM, json=body, headers={"x-goog-api-key": API_KEY})
    chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line[:6] == "data: "]
    calls = [
        part["functionCall"]
        for chunk in chunks
        for part in chunk["candidates"][0]["content"].get("parts", [])
        if "functionCall" in part
    ]
    assert chaos.attempts[0].faults == ([f"bad_tool_call({variant})"] if variant else [])
    if variant == "invalid_json":
        assert calls == []
        assert chunks[-1]["candidates"][0]["finishReason"] == "MALFORMED_FUNCTION_CALL"
        return
    assert len(calls) == 1
    name, args = calls[0]["name"], calls[0]["args"]
    if variant is None:
        assert name == "get_weather" and set(args) == {"city", "unit"}
    elif variant == "unknown_tool":
        assert name == "no_such_tool" and set(args) == {"city", "unit"}
    else:
        assert (name, args) == ("get_weather", {})


def test_an_async_stream_the_sdk_stops_reading_closes_without_an_error() -> None:
    """The openai SDK stops reading after `[DONE]`; the event loop then closes the answer's
    generator, which must end cleanly (no "error occurred during closing" per stream)."""
    import asyncio
    import gc

    errors: list[dict[str, Any]] = []

    async def main() -> list[str]:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        texts: list[str] = []
        with aichaos.inject(seed=1):
            http = httpx.AsyncClient()  # the openai SDK's own default (httpx2) closes differently
            async with openai.AsyncOpenAI(
                api_key=API_KEY, max_retries=0, http_client=http
            ) as client:
                for _ in range(3):
                    stream = await client.chat.completions.create(
                        model=GPT, messages=MESSAGES, stream=True
                    )
                    texts.append("".join([c.choices[0].delta.content or "" async for c in stream]))
                    del stream
                    gc.collect()
                    for _ in range(5):  # the loop's finalizer closes the generator in a task
                        await asyncio.sleep(0)
        return texts

    texts = asyncio.run(main())
    assert all(texts) and len(texts) == 3
    assert errors == []
