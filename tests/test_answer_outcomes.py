"""How each attempt's answer ended (`Attempt.outcome`), with the real openai and anthropic SDKs.

Every stream-ending mode, in-process and through the proxy: injected by a fault on the
mock, and delivered by a real upstream (an HTTP server whose streams end that way by
themselves), so the outcome is read from what was delivered. Only a complete 2xx answer is
`ok`, and a call is served by the backend of its last complete answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

import aichaos
from aichaos.exchange.asgi import send_reply
from aichaos.faults.base import parse_fault
from aichaos.intercept.session import Session
from aichaos.mock import MockBackend, MockConfig
from aichaos.providers import get_provider
from aichaos.proxy import RunningProxy, serve_proxy_in_thread
from aichaos.records import Attempt, CallScope, call_scope
from aichaos.wire.asgi import Receive, Scope, Send, read_request
from aichaos.wire.exchange import Reply
from proxy_helpers import make_session, settled, wait_for
from servers import serve

GPT, CLAUDE = "gpt-4o", "claude-sonnet-4-6"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Tell me about rivers and clouds"}]
READ_TIMEOUT = 0.5  # the client's; a stall is ten times longer
ENDING = "x-test-ending"


@dataclass(frozen=True)
class Case:
    fault: dict[str, Any] | None
    outcome: str
    raises: bool  # the SDK raises while reading the stream


CASES: dict[str, Case] = {
    "clean": Case(None, "complete", raises=False),
    "cut-drop": Case(
        {"kind": "stream_cut", "after": 2, "mode": "drop"}, "connection_dropped", True
    ),
    "cut-error-event": Case(
        {"kind": "stream_cut", "after": 2, "mode": "error_event"}, "stream_error_event", True
    ),
    "cut-no-terminator": Case(
        {"kind": "stream_cut", "after": 2, "mode": "no_terminator"}, "stream_incomplete", False
    ),
    "stall": Case({"kind": "stream_stall", "after": 2, "stall": "5s"}, "stalled", True),
    "reset-after-bytes": Case(
        {"kind": "connection_reset", "after_bytes": 300}, "connection_dropped", True
    ),
}


# --- the two SDKs, reading a stream to its end -----------------------------------------
def read_openai(client: openai.OpenAI, **kw: Any) -> list[str]:
    stream = client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True, **kw)  # type: ignore[arg-type]
    return [c.choices[0].delta.content or "" for c in stream if c.choices]


def finished_openai(client: openai.OpenAI) -> bool:
    """Whether the stream said how the answer finished (what a careful app checks)."""
    stream = client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    return any(c.choices and c.choices[0].finish_reason for c in stream)


def read_anthropic(client: anthropic.Anthropic, **kw: Any) -> list[str]:
    stream = client.messages.create(
        model=CLAUDE,
        max_tokens=64,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        **kw,
    )
    return [
        e.delta.text
        for e in stream
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]  # type: ignore[union-attr]


SDKS: dict[str, tuple[str, Callable[..., list[str]]]] = {
    "openai": ("openai", read_openai),
    "anthropic": ("claude", read_anthropic),
}


def call(read: Callable[..., list[str]], client: Any, **kw: Any) -> bool:
    """Make one streamed call; whether the SDK raised."""
    try:
        read(client, **kw)
    except Exception:
        return True
    return False


def in_process_client(sdk: str, base_url: str | None = None) -> Any:
    """An SDK client on its provider's official host, or on `base_url` (a backend's upstream,
    which then claims that host)."""
    if sdk == "openai":
        url = None if base_url is None else base_url + "/v1"
        return openai.OpenAI(api_key="sk-test", base_url=url, max_retries=0, timeout=READ_TIMEOUT)
    return anthropic.Anthropic(
        api_key="sk-ant", base_url=base_url, max_retries=0, timeout=READ_TIMEOUT
    )


def proxy_client(proxy: RunningProxy, sdk: str, backend: str) -> Any:
    url = proxy.backend_url(backend)
    if sdk == "openai":
        return openai.OpenAI(
            base_url=url + "/v1", api_key="sk-test", max_retries=0, timeout=READ_TIMEOUT
        )
    return anthropic.Anthropic(base_url=url, api_key="sk-ant", max_retries=0, timeout=READ_TIMEOUT)


def check(attempt: Attempt, outcome: str) -> None:
    assert attempt.outcome == outcome
    assert attempt.status == 200
    assert attempt.ok is (outcome == "complete")
    served = CallScope("call", [attempt]).served_by
    assert served == (attempt.backend if outcome == "complete" else None)


# --- a real upstream whose streams end as the request says ------------------------------
class EndingUpstream:
    """The mock's answers over HTTP, a stream's last event replaced as header `x-test-ending`
    says: kept (`complete`), dropped (`no_terminator`), or the provider's in-band error."""

    def __init__(self) -> None:
        self.mock = MockBackend(MockConfig(seed=5))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        info = await read_request(scope, receive)
        reply = self.mock.handle(info)
        parts = [part for part in reply.parts() if isinstance(part, bytes)]
        ending = info.headers.get(ENDING, "complete")
        if ending != "complete":
            parts.pop()  # `data: [DONE]` / `message_stop`
        if ending == "error_event":
            provider = get_provider("anthropic" if info.path.endswith("/messages") else "openai")
            parts.append(
                provider.stream_error_event(
                    info, type="overloaded_error", message="Overloaded", headers=reply.headers
                ).encode()
            )
        await send_reply(Reply(reply.status, reply.headers, parts), send)


UPSTREAM_ENDINGS = {
    "complete": ("complete", False),
    "no_terminator": ("stream_incomplete", False),
    "error_event": ("stream_error_event", True),
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve(EndingUpstream()) as url:
        yield url


@pytest.fixture(scope="module")
def proxy(upstream: str) -> Iterator[RunningProxy]:
    session = make_session(
        {
            "openai": "openai",
            "claude": "anthropic",
            "up-openai": {"provider": "openai", "upstream": upstream},
            "up-claude": {"provider": "anthropic", "upstream": upstream},
        }
    )
    with serve_proxy_in_thread(session) as running:
        yield running


@pytest.fixture
def session(proxy: RunningProxy) -> Session:
    proxy.session.engine.clear()
    proxy.session.recorder.clear()
    return proxy.session


# --- injected by a fault ------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("sdk", list(SDKS))
def test_in_process_outcome(sdk: str, case: str) -> None:
    expected = CASES[case]
    _, read = SDKS[sdk]
    faults = [expected.fault] if expected.fault else []
    with aichaos.inject(faults) as chaos, call_scope() as scope:
        raised = call(read, in_process_client(sdk))
    assert raised is expected.raises
    [attempt] = chaos.attempts
    assert attempt.backend == ("anthropic" if sdk == "anthropic" else "openai")
    check(attempt, expected.outcome)
    assert scope.served_by == (attempt.backend if expected.outcome == "complete" else None)


def test_an_app_that_stops_reading_before_a_pause_did_not_get_the_rest() -> None:
    # The mock's whole stream is shaped at once, its final event metered then; the app
    # closes the stream after the first chunk, before the stall: it never had the end.
    stall = {"kind": "stream_stall", "after": 2, "stall": "5s"}
    with aichaos.inject([stall]) as chaos:
        client = in_process_client("openai")
        stream = client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        next(iter(stream))
        stream.close()
    [attempt] = chaos.attempts
    assert (attempt.outcome, attempt.ok) == ("cancelled", False)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("sdk", list(SDKS))
def test_proxy_outcome(proxy: RunningProxy, session: Session, sdk: str, case: str) -> None:
    expected = CASES[case]
    backend, read = SDKS[sdk]
    if expected.fault:
        session.engine.add(parse_fault(expected.fault))
    raised = call(read, proxy_client(proxy, sdk, backend))
    assert raised is expected.raises
    wait_for(lambda: [a.duration is not None for a in session.recorder.attempts] == [True])
    check(settled(session)[0], expected.outcome)


# --- delivered by a real upstream -----------------------------------------------------------
@pytest.mark.parametrize("ending", list(UPSTREAM_ENDINGS))
@pytest.mark.parametrize("sdk", list(SDKS))
def test_upstream_answer_in_process(upstream: str, sdk: str, ending: str) -> None:
    outcome, raises = UPSTREAM_ENDINGS[ending]
    _, read = SDKS[sdk]
    name = "openai" if sdk == "openai" else "anthropic"
    backends = {name: {"provider": name, "upstream": upstream}}
    with aichaos.inject(backends=backends) as chaos:
        raised = call(read, in_process_client(sdk, upstream), extra_headers={ENDING: ending})
    assert raised is raises
    [attempt] = chaos.attempts
    check(attempt, outcome)


@pytest.mark.parametrize("ending", list(UPSTREAM_ENDINGS))
@pytest.mark.parametrize("sdk", list(SDKS))
def test_upstream_answer_through_the_proxy(
    proxy: RunningProxy, session: Session, sdk: str, ending: str
) -> None:
    outcome, raises = UPSTREAM_ENDINGS[ending]
    _, read = SDKS[sdk]
    client = proxy_client(proxy, sdk, "up-openai" if sdk == "openai" else "up-claude")
    assert call(read, client, extra_headers={ENDING: ending}) is raises
    wait_for(lambda: [a.duration is not None for a in session.recorder.attempts] == [True])
    check(settled(session)[0], outcome)


# --- served by the last complete answer -------------------------------------------------------
def test_a_call_is_served_by_its_last_complete_answer() -> None:
    """An OpenAI stream that silently stops is not an answer: an app that falls back to
    Claude is served by Claude; a naive app that shows the partial text is served by nobody."""
    cut = {"kind": "stream_cut", "after": 2, "mode": "no_terminator", "backend": "openai"}
    with aichaos.inject([cut]) as chaos:
        with call_scope() as naive:
            assert read_openai(in_process_client("openai"))  # partial text, no error
        with call_scope() as careful:
            if not finished_openai(in_process_client("openai")):
                read_anthropic(in_process_client("anthropic"))  # no finish: fall back
    assert [a.outcome for a in chaos.attempts] == ["stream_incomplete"] * 2 + ["complete"]
    assert naive.served_by is None
    assert careful.served_by == "anthropic"
