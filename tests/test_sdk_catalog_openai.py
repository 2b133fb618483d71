"""Failure shapes from public bug reports, against the real openai SDK (3.x).

Expected values come from openai-python's own source: `_streaming.Stream.__stream__` (a `data:`
JSON with an `error` key raises `APIError`; typed events such as `response.failed` are yielded),
`lib/streaming/responses/_responses.py` (`get_final_response()` raises `RuntimeError` without a
`response.completed`), `_base_client._should_retry` (5xx retried twice) and
`_client._make_status_error` (5xx `InternalServerError`, `.body` the raw text when not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import respx

import aichaos
from sdk_support import API_KEY, GPT, MESSAGES, OPENAI_TOOLS, PROMPT, SdkSleeps, assert_backoff

WEATHER_TOOL = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": OPENAI_TOOLS[0]["function"]["parameters"],
    }
]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SdkSleeps:
    """The retry delays the SDK computes (it still sleeps them)."""
    return SdkSleeps().install(monkeypatch)


@pytest.fixture
def client() -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=API_KEY) as sdk:
        yield sdk


def responses_events(client: openai.OpenAI, **kw: Any) -> list[Any]:
    return list(client.responses.create(model=GPT, input=PROMPT, stream=True, **kw))


# --- Responses stream endings ----------------------------------------------------------------


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


def test_responses_error_event_carries_the_next_sequence_number(client: openai.OpenAI) -> None:
    fault = {"kind": "stream_cut", "mode": "error_event", "after": 2}
    with aichaos.inject([fault]):
        events = responses_events(client)
    assert events[-1].type == "error" and events[-1].code == "server_error"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].sequence_number > 0


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
    delivered = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == delivered
    assert final.usage.output_tokens == kinds.count("response.output_text.delta")
    assert [e.sequence_number for e in events] == list(range(len(events)))


# --- truncation that is consistent -------------------------------------------------------------


@pytest.mark.parametrize("after", [2, 50])
def test_truncated_stream_cuts_tool_arguments(client: openai.OpenAI, after: int) -> None:
    """Cut by the token limit, a tool call's arguments end mid-JSON, however many fit."""
    with aichaos.inject([{"kind": "truncated", "after": after}]):
        chunks = list(
            client.chat.completions.create(
                model=GPT,
                messages=MESSAGES,  # type: ignore[arg-type]
                tools=OPENAI_TOOLS,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    fragments = [
        call.function.arguments or ""
        for c in chunks
        for choice in c.choices
        for call in choice.delta.tool_calls or []
    ]
    arguments = "".join(fragments)
    assert arguments
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)
    finishes = [
        choice.finish_reason for c in chunks for choice in c.choices if choice.finish_reason
    ]
    assert finishes == ["length"]
    usage = chunks[-1].usage
    delivered = len([f for f in fragments if f])
    assert usage is not None and usage.completion_tokens == min(after, delivered)


@pytest.mark.parametrize("stream", [False, True])
def test_truncated_usage_counts_the_delivered_tokens(client: openai.OpenAI, stream: bool) -> None:
    with aichaos.inject([{"kind": "truncated", "after": 4}]):
        if stream:
            chunks = list(
                client.chat.completions.create(
                    model=GPT,
                    messages=MESSAGES,  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            usage = chunks[-1].usage
        else:
            answer = client.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
            text, usage = answer.choices[0].message.content or "", answer.usage
    assert len(text.split()) == 4
    assert usage is not None and usage.completion_tokens == 4
    assert usage.total_tokens == usage.prompt_tokens + 4


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("variant", ["invalid_json", "empty_arguments"])
def test_broken_tool_arguments(client: openai.OpenAI, stream: bool, variant: str) -> None:
    """Both forms break the JSON the same way; `{}` arguments included (empty schema)."""
    tools = [{"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}]
    with aichaos.inject([{"kind": "bad_tool_call", "variant": variant}]):
        result = client.chat.completions.create(
            model=GPT,
            messages=MESSAGES,  # type: ignore[arg-type]
            tools=tools,  # type: ignore[arg-type]
            stream=stream,
        )
        if stream:
            arguments = "".join(
                call.function.arguments or ""
                for c in result
                for choice in c.choices
                for call in choice.delta.tool_calls or []
            )
        else:
            calls = result.choices[0].message.tool_calls or []
            arguments = calls[0].function.arguments
    assert arguments == ("{{}" if variant == "invalid_json" else "")
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


# --- error bodies that are not JSON, integer codes, replaced headers ---------------------------


@pytest.mark.parametrize(
    ("status", "body", "marker"), [(524, "html", "cloudflare"), (502, "nginx", "nginx")]
)
def test_gateway_html_page_is_an_internal_server_error(
    client: openai.OpenAI, sleeps: SdkSleeps, status: int, body: str, marker: str
) -> None:
    fault = {"kind": "error", "status": status, "body": body}
    with aichaos.inject([fault]) as chaos, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    exc = info.value
    assert exc.status_code == status
    assert isinstance(exc.body, str) and exc.body.lstrip().startswith("<")
    assert marker in exc.body.lower()
    assert exc.response.headers["content-type"].startswith("text/html")
    assert exc.response.headers.get_list("content-type") == [exc.response.headers["content-type"]]
    assert exc.code is None and exc.type is None
    assert_backoff(chaos.attempts, sleeps.of())  # 5xx: retried twice with the SDK's backoff


def test_integer_code_and_replaced_headers(client: openai.OpenAI) -> None:
    fault = {
        "kind": "error",
        "status": 502,
        "type": "cf_bad_gateway",
        "code": 502,
        "headers": {"content-type": "application/json; charset=utf-8", "x-should-retry": "false"},
    }
    with aichaos.inject([fault]) as chaos, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    exc = info.value
    assert isinstance(exc.body, dict) and exc.body["code"] == 502  # sent as given, an integer
    assert exc.code == "502" and exc.type == "cf_bad_gateway"  # the SDK types `.code` as str
    assert exc.response.headers.get_list("content-type") == ["application/json; charset=utf-8"]
    assert len(chaos.attempts) == 1  # x-should-retry: false wins over the 5xx rule


# --- the mock refuses malformed requests as the provider does ----------------------------------


def test_mock_answers_a_missing_field_with_the_providers_400(client: openai.OpenAI) -> None:
    with aichaos.inject() as chaos, pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", body={"model": GPT}, cast_to=object)
    exc = info.value
    assert exc.code == "missing_required_parameter" and exc.type == "invalid_request_error"
    assert "'messages'" in exc.message
    assert len(chaos.attempts) == 1  # a 400 is not retried


def test_mock_answers_invalid_json_with_the_providers_400() -> None:
    with aichaos.inject(), httpx.Client() as http:
        response = http.post(
            "https://api.anthropic.com/v1/messages",
            content=b'{"model": "claude", "messages": [',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


# --- messy outputs that look right: facts changed ---------------------------------------------

FACTS = "Alice met Bob in Paris on 2024-03-05 and paid 120.50 dollars; Alice left on March 9, 2024."
UPSTREAM = "https://api.example-llm.test"


def _upstream_answer(stream: bool) -> httpx.Response:
    if not stream:
        message = {"role": "assistant", "content": FACTS}
        body = {
            "id": "chatcmpl-facts",
            "object": "chat.completion",
            "created": 1,
            "model": GPT,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        return httpx.Response(200, json=body)
    events = []
    for piece in [FACTS.split(" ")[0]] + [" " + w for w in FACTS.split(" ")[1:]]:
        chunk = {
            "id": "chatcmpl-facts",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": GPT,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    events.append("data: [DONE]\n\n")
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content="".join(events).encode()
    )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["numbers", "dates", "names"])
def test_corrupt_text_changes_facts_plausibly(stream: bool, mode: str) -> None:
    backends = {"llm": {"provider": "openai", "upstream": UPSTREAM}}
    fault = {"kind": "corrupt_text", "mode": mode}
    with (
        respx.mock(base_url=UPSTREAM) as router,
        openai.OpenAI(
            api_key=API_KEY,
            base_url=f"{UPSTREAM}/v1",
            http_client=httpx.Client(),  # type: ignore[arg-type]  # respx mocks plain httpx
        ) as sdk,
        aichaos.inject([fault], backends=backends, seed=3) as chaos,
    ):
        router.post("/v1/chat/completions").mock(side_effect=lambda r: _upstream_answer(stream))
        result = sdk.chat.completions.create(
            model=GPT,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=stream,
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
        else:
            text = result.choices[0].message.content or ""
    before, after = FACTS.split(" "), text.split(" ")
    assert len(after) == len(before) and text != FACTS
    changed = {(a, b) for a, b in zip(before, after, strict=True) if a != b}
    if mode == "numbers":
        # Dates stay whole and valid; in a stream, a long date split over deltas is numbers.
        split_date = {"9,", "2024."} if stream else set()
        assert {a for a, _ in changed} == {"120.50", *split_date}
        new = after[before.index("120.50")]
        assert len(new) == len("120.50") and new.count(".") == 1 and new != "120.50"
        assert after[before.index("2024-03-05")] == "2024-03-05"
    elif mode == "dates":
        assert {a for a, _ in changed} <= {"2024-03-05", "March", "9,", "2024."}
        iso = after[before.index("2024-03-05")]
        assert len(iso) == 10 and iso.count("-") == 2 and iso != "2024-03-05"
    else:
        assert {a for a, _ in changed} == {"Alice", "Bob", "Paris"}
        assert after[0] == after[before.index("Alice", 1)]  # the same name, both times
        assert after[4] != "Paris" and after[4][0].isupper()
    assert chaos.attempts[0].faults == [f"corrupt_text({mode})"]


# --- faults that did not act are not hits ------------------------------------------------------


def test_an_edit_of_an_error_answer_is_not_a_hit(client: openai.OpenAI) -> None:
    """The body edit of `malformed` acts on a 2xx answer only: under an error it is not listed."""
    faults = [{"kind": "malformed"}, {"kind": "error", "status": 500}]
    with aichaos.inject(faults) as chaos, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    assert isinstance(info.value.body, dict)  # the provider's JSON error, unchanged
    assert [a.faults for a in chaos.attempts] == [["error(500)"]] * 3
    with aichaos.inject([faults[0]]) as chaos, pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model=GPT, messages=MESSAGES)  # type: ignore[arg-type]
    assert chaos.attempts[0].faults == ["malformed(invalid_json)"]
