"""OpenAI's Responses API (`client.responses`) against the real openai SDK (3.x): its own
typed events, so provider-specific tests (the Chat Completions tables run both SDKs).

Expected values come from openai-python's own source: `_streaming.Stream.__stream__` yields
typed events such as `response.failed`, `response.incomplete` and the flat `error` event (it
raises only for a `data:` JSON with an `error` key), and
`lib/streaming/responses/_responses.py`: `get_final_response()` takes the final response from
`response.completed` (not the deltas) and raises `RuntimeError` without one. Each test runs on
the SDK's default client (httpx2) and on a plain `httpx.Client`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import aichaos
from sdk_support import GPT, PROMPT, SDKS, WEATHER, Sdk, sdk_client, words


@pytest.fixture(params=[sdk for sdk in SDKS if sdk.provider == "openai"], ids=lambda s: s.id)
def client(request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    sdk: Sdk = request.param
    with sdk_client(sdk) as found:
        yield found


def responses_events(client: openai.OpenAI, **kw: Any) -> list[Any]:
    return list(client.responses.create(model=GPT, input=PROMPT, stream=True, **kw))


def responses_text(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


# --- stream endings ---------------------------------------------------------------------------


def test_responses_stream_error_event_is_yielded(client: openai.OpenAI) -> None:
    fault = {"kind": "stream_cut", "mode": "error_event", "after": 2}
    with aichaos.inject([fault]) as chaos:
        events = responses_events(client)
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 2
    assert events[-1].type == "error"  # the flat error event is yielded, not raised
    assert events[-1].code == "server_error"
    assert not [e for e in events if e.type == "response.completed"]
    assert len(chaos.attempts) == 1
    # it carries the next sequence number
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].sequence_number > 0


def test_responses_stream_fails_with_response_failed(client: openai.OpenAI) -> None:
    fault = {"kind": "stream_cut", "mode": "failed", "after": 2}
    with aichaos.inject([fault]) as chaos:
        events = responses_events(client)  # the SDK yields it, it does not raise
    kinds = [e.type for e in events]
    assert kinds[-1] == "response.failed" and "response.completed" not in kinds
    assert kinds.count("response.output_text.delta") == 2
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "server_error"
    assert failed.error.message
    assert failed.id == events[0].response.id and failed.model == events[0].response.model
    assert chaos.attempts[0].faults == ["stream_cut(failed)"]


def test_responses_stream_helper_has_no_final_response_after_a_failure(
    client: openai.OpenAI,
) -> None:
    fault = {"kind": "stream_cut", "mode": "failed", "after": 1}
    with (
        aichaos.inject([fault]),
        client.responses.stream(model=GPT, input=PROMPT) as stream,
    ):
        for _ in stream:
            pass
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"kind": "truncated", "after": 3}, "max_output_tokens"),
        ({"kind": "content_filter", "after": 1}, "content_filter"),
    ],
)
def test_responses_stream_ends_incomplete(
    client: openai.OpenAI, fault: dict[str, Any], reason: str
) -> None:
    with aichaos.inject([fault]):
        events = responses_events(client)
    kinds = [e.type for e in events]
    assert kinds[-1] == "response.incomplete" and "response.completed" not in kinds
    final = events[-1].response
    assert final.status == "incomplete" and final.incomplete_details.reason == reason
    delivered = responses_text(events)
    assert final.output_text == delivered
    assert final.usage.output_tokens == kinds.count("response.output_text.delta")
    assert [e.sequence_number for e in events] == list(range(len(events)))


# --- content faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_responses_truncated(client: openai.OpenAI, stream: bool) -> None:
    with aichaos.inject([{"kind": "truncated", "after": 2}]):
        if stream:
            events = list(client.responses.create(model="gpt-4.1", input="hi", stream=True))
            assert events[-1].type == "response.incomplete"
            response = events[-1].response
            text = responses_text(events)
            done = [e.text for e in events if e.type == "response.output_text.done"]
            assert done == [text]  # the repeated text agrees with the deltas
            assert response.output_text == text
        else:
            response = client.responses.create(model="gpt-4.1", input="hi")
            text = response.output_text
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert len(words(text)) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"kind": "empty_completion"}, ""),
        ({"kind": "corrupt_text", "mode": "replace", "text": "Pwned."}, "Pwned."),
    ],
    ids=["empty_completion", "corrupt_text"],
)
def test_responses_stream_helper_sees_the_edited_text(
    client: openai.OpenAI, fault: dict[str, Any], expected: str
) -> None:
    """`responses.stream()` takes the final text from `response.completed`, not the deltas."""
    with (
        aichaos.inject([fault]),
        client.responses.stream(model="gpt-4.1", input="hi") as stream,
    ):
        deltas = responses_text(list(stream))
        final = stream.get_final_response()
    assert deltas == expected
    assert final.output_text == expected


# --- bad tool calls ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["invalid_json", "unknown_tool", "missing_arguments"])
def test_responses_stream_bad_tool_call(client: openai.OpenAI, variant: str) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]

    def call() -> tuple[str, Any]:
        with client.responses.stream(model="gpt-4.1", input="hi", tools=tools) as stream:
            events = list(stream)
            return "".join(
                e.delta for e in events if e.type == "response.function_call_arguments.delta"
            ), stream.get_final_response().output[0]

    with aichaos.inject():
        good, _ = call()
    with aichaos.inject([{"kind": "bad_tool_call", "variant": variant}]):
        deltas, item = call()
    assert item.type == "function_call"
    assert item.arguments == deltas  # the final response repeats what the deltas said
    if variant == "invalid_json":
        assert deltas == "{" + good  # every fragment kept, one stray brace up front
        with pytest.raises(json.JSONDecodeError):
            json.loads(item.arguments)
    elif variant == "unknown_tool":
        assert (item.name, deltas) == ("no_such_tool", good)
    else:
        assert (item.name, deltas) == ("get_weather", "{}")
