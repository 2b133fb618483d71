"""Gemini faults against the real google-genai SDK (3.x), through `aichaos.inject()`.

What each test expects is read from google-genai's own source: `types.GenerateContentResponse`
(`text` is None when the first candidate's content has no parts, `candidates` is None when the
prompt was blocked), `types.FinishReason` / `types.BlockedReason`, `errors.APIError.raise_error`
(4xx `ClientError`, 5xx `ServerError`), `_api_client` (no retry unless `retry_options` are given:
one attempt; every stream line that is not `data:` is parsed as JSON).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

import aichaos

if TYPE_CHECKING:
    from google import genai
    from google.genai import errors, types
else:

    class _OnFirstUse:
        """A module imported when first used, not at collection: every xdist worker collects
        every test file, and google-genai costs most of a second of CPU to import."""

        def __init__(self, name: str) -> None:
            self._name = name

        def __getattr__(self, attribute: str) -> Any:
            return getattr(importlib.import_module(self._name), attribute)

    genai = _OnFirstUse("google.genai")
    errors = _OnFirstUse("google.genai.errors")
    types = _OnFirstUse("google.genai.types")

MODEL = "gemini-2.5-flash"
PROMPT = "Describe the weather in Paris today"


def weather_tool() -> types.Tool:
    return types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                description="Current weather",
                parameters=types.Schema(
                    type=types.Type.OBJECT,
                    properties={"city": types.Schema(type=types.Type.STRING)},
                    required=["city"],
                ),
            )
        ]
    )


@pytest.fixture
def client() -> Iterator[genai.Client]:
    with genai.Client(api_key="aichaos-planted-key") as sdk:
        yield sdk


def generate(client: genai.Client, **config: Any) -> types.GenerateContentResponse:
    return client.models.generate_content(
        model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(**config)
    )


def stream(client: genai.Client, **config: Any) -> list[types.GenerateContentResponse]:
    return list(
        client.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(**config)
        )
    )


@pytest.mark.parametrize(
    "reason", ["RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "OTHER", "SAFETY"]
)
def test_filter_finish_reasons(client: genai.Client, reason: str) -> None:
    fault = {"kind": "content_filter", "reason": reason}
    with aichaos.inject([fault]) as chaos:
        response = generate(client)
    candidate = (response.candidates or [])[0]
    assert candidate.finish_reason == types.FinishReason(reason)
    assert response.text is None  # no exception: the app must look at the finish reason
    if reason == "RECITATION":
        assert candidate.citation_metadata is not None
        assert candidate.citation_metadata.citations
    if reason == "SAFETY":
        assert any(r.blocked for r in candidate.safety_ratings or [])
    assert len(chaos.attempts) == 1


def test_recitation_in_a_stream(client: genai.Client) -> None:
    with aichaos.inject([{"kind": "content_filter", "reason": "RECITATION", "after": 2}]):
        chunks = stream(client)
    last = (chunks[-1].candidates or [])[0]
    assert last.finish_reason == types.FinishReason.RECITATION
    assert last.citation_metadata is not None
    assert "".join(c.text or "" for c in chunks).count(" ") == 1  # two words got through


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("reason", [None, "PROHIBITED_CONTENT"])
def test_blocked_prompt(client: genai.Client, streamed: bool, reason: str | None) -> None:
    fault = {"kind": "content_filter", "on": "prompt", "reason": reason}
    with aichaos.inject([fault]) as chaos:
        response = stream(client)[0] if streamed else generate(client)
    assert response.candidates is None
    assert response.text is None
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason(reason or "SAFETY")
    assert chaos.attempts[0].status == 200


@pytest.mark.parametrize("streamed", [False, True])
def test_empty_answer_has_no_text_at_all(client: genai.Client, streamed: bool) -> None:
    with aichaos.inject([{"kind": "empty_completion"}]):
        chunks = stream(client) if streamed else [generate(client)]
    assert chunks  # the answer came, with no text in any chunk
    assert all(chunk.text is None for chunk in chunks)  # None, not ""
    if not streamed:
        usage = chunks[0].usage_metadata
        assert usage is not None and usage.candidates_token_count is None


@pytest.mark.parametrize("streamed", [False, True])
def test_invalid_tool_arguments_are_a_malformed_function_call(
    client: genai.Client, streamed: bool
) -> None:
    with aichaos.inject([{"kind": "bad_tool_call", "variant": "invalid_json"}]) as chaos:
        chunks = (
            stream(client, tools=[weather_tool()])
            if streamed
            else [generate(client, tools=[weather_tool()])]
        )
    assert all(chunk.function_calls is None for chunk in chunks)
    last = (chunks[-1].candidates or [])[0]
    assert last.finish_reason == types.FinishReason.MALFORMED_FUNCTION_CALL
    assert chaos.attempts[0].faults == ["bad_tool_call(invalid_json)"]


def test_tool_call_without_fault_parses(client: genai.Client) -> None:
    with aichaos.inject():
        response = generate(client, tools=[weather_tool()])
    calls = response.function_calls or []
    assert [(c.name, sorted(c.args or {})) for c in calls] == [("get_weather", ["city"])]


def test_stall_with_keepalive_sends_no_comment_lines(client: genai.Client) -> None:
    """Google sends no keep-alive: a comment line would make google-genai fail to parse it."""
    fault = {"kind": "stream_stall", "after": 1, "stall": 0.3, "keepalive": 0.05}
    started = time.monotonic()
    with aichaos.inject([fault]):
        chunks = stream(client)
    assert time.monotonic() - started >= 0.3
    assert (chunks[-1].candidates or [])[0].finish_reason == types.FinishReason.STOP
    assert len("".join(c.text or "" for c in chunks).split()) >= 8


def test_rate_limit_retry_delay_keeps_its_precision(client: genai.Client) -> None:
    fault = {"kind": "rate_limit", "retry_after": 0.3}
    with aichaos.inject([fault]) as chaos, pytest.raises(errors.ClientError) as info:
        generate(client)
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    details = info.value.details["error"]["details"]
    delays = [d["retryDelay"] for d in details if d["@type"].endswith("RetryInfo")]
    assert delays == ["0.300s"]
    assert len(chaos.attempts) == 1  # google-genai does not retry unless configured to


def test_outage_is_a_server_error_without_retries(client: genai.Client) -> None:
    with aichaos.inject([{"kind": "outage"}]) as chaos, pytest.raises(errors.ServerError) as info:
        generate(client)
    assert (info.value.code, info.value.status) == (503, "UNAVAILABLE")
    assert len(chaos.attempts) == 1


@pytest.mark.parametrize("streamed", [False, True])
def test_truncated_usage_counts_what_was_delivered(client: genai.Client, streamed: bool) -> None:
    with aichaos.inject([{"kind": "truncated", "after": 3}]):
        chunks = stream(client) if streamed else [generate(client)]
    text = "".join(c.text or "" for c in chunks)
    assert len(text.split()) == 3
    last = (chunks[-1].candidates or [])[0]
    assert last.finish_reason == types.FinishReason.MAX_TOKENS
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.candidates_token_count == 3
