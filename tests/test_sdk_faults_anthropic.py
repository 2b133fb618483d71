"""Every fault kind against the real anthropic SDK (2.x), through `aichaos.inject()`.

Each test asserts what the SDK really does with the real failure (per the provider
reference): the exception class (2.x picks subclasses such as `OverloadedError` or
`ServiceUnavailableError`), status, `.type`, `.body` (the *whole* error JSON, unlike openai),
how many attempts the SDK makes with its default `max_retries=2`, and how long it waits.
The SDK only takes httpx2 clients; its default client is the one under test.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent

import aichaos
from aichaos.records import Attempt
from sdk_support import (
    ANTHROPIC_TOOLS,
    API_KEY,
    CASE_HEADER,
    CLAUDE,
    MESSAGES,
    SLACK,
    SdkSleeps,
    assert_backoff,
    assert_retry_after,
    for_case,
    words,
)

# Anthropic's `retry-after` is whole seconds: the recorder sleeps a tenth of each delay the
# SDK computes (and records the delay itself), so those waits do not slow the suite.
SCALE = 0.1


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SdkSleeps:
    """The retry delays the SDK computes, by call id (it sleeps a tenth of each)."""
    return SdkSleeps(SCALE).install(monkeypatch)


@pytest.fixture
def client() -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY) as sdk:
        yield sdk


def create(client: anthropic.Anthropic, **kw: Any) -> Any:
    return client.messages.create(
        model=CLAUDE,
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kw,
    )


def text_of_message(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def events_of(client: anthropic.Anthropic, **kw: Any) -> list[RawMessageStreamEvent]:
    return list(create(client, stream=True, **kw))


def text_of(events: list[RawMessageStreamEvent]) -> str:
    return "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


def text_deltas(events: list[RawMessageStreamEvent]) -> list[str]:
    return [
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]


def stop_reasons(events: list[RawMessageStreamEvent]) -> list[str | None]:
    return [e.delta.stop_reason for e in events if e.type == "message_delta"]


def final_message(client: anthropic.Anthropic, **kw: Any) -> Message:
    """The message the SDK's stream helper accumulates from the events."""
    with client.messages.stream(
        model=CLAUDE,
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kw,
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


@pytest.fixture(scope="module")
def baseline() -> str:
    """The mock's answer to the prompt when no fault acts (deterministic for the seed)."""
    with aichaos.inject(), anthropic.Anthropic(api_key=API_KEY) as sdk:
        message = create(sdk)
    assert message.stop_reason == "end_turn"
    text = text_of_message(message)
    assert len(words(text)) >= 8
    return text


# --- retries: the rest, errors and retries of both SDKs as one table, is test_sdk_retries.py


# --- failures inside a started stream, as one table of both SDKs: test_sdk_streams.py ----------


# --- delays -----------------------------------------------------------------------------


# --- malformed 200s, as one table of both SDKs: test_sdk_malformed.py ------------------------


# --- content faults and bad tool calls, as tables of both SDKs: test_sdk_content.py and
# test_sdk_tool_calls.py; the unfaulted tool call, for the async test below


def tool_use_of(client: anthropic.Anthropic) -> tuple[str, Any, str | None]:
    """(name, input, stop_reason) of the single tool call the mock makes."""
    message = create(client, tools=ANTHROPIC_TOOLS)
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1
    return blocks[0].name, blocks[0].input, message.stop_reason


def partial_json_of(client: anthropic.Anthropic) -> tuple[str, str, str | None]:
    """(name, joined partial_json, stop_reason) of a streamed tool call, as sent."""
    events = events_of(client, tools=ANTHROPIC_TOOLS)
    names = [
        e.content_block.name
        for e in events
        if e.type == "content_block_start" and e.content_block.type == "tool_use"
    ]
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(names) == 1
    return names[0], "".join(fragments), (stop_reasons(events) or [None])[0]


@pytest.fixture(scope="module")
def good_input() -> tuple[dict[str, Any], str]:
    """The tool input the mock sends unfaulted, as an object and as streamed JSON text."""
    with aichaos.inject(), anthropic.Anthropic(api_key=API_KEY) as sdk:
        name, value, stop = tool_use_of(sdk)
        streamed_name, streamed, streamed_stop = partial_json_of(sdk)
    assert (name, stop, streamed_name, streamed_stop) == ("get_weather", "tool_use") * 2
    assert isinstance(value, dict) and set(value) == {"city", "unit"}
    assert json.loads(streamed) == value
    return value, streamed


# --- async client (a representative subset) -----------------------------------------------------


@pytest.fixture
async def aclient() -> Any:
    async with anthropic.AsyncAnthropic(api_key=API_KEY) as sdk:
        yield sdk


async def acreate(client: anthropic.AsyncAnthropic, **kw: Any) -> Any:
    return await client.messages.create(
        model=CLAUDE,
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kw,
    )


@pytest.mark.anyio
async def test_async_retries_in_concurrent_call_scopes(
    aclient: anthropic.AsyncAnthropic, baseline: str, sleeps: SdkSleeps
) -> None:
    faults = [
        for_case("clears", {"kind": "rate_limit", "first": 2, "retry_after": 0.2}),
        for_case("outage", {"kind": "outage"}),
        for_case("timeout", {"kind": "timeout"}),
    ]

    async def call(case: str, sdk: anthropic.AsyncAnthropic) -> tuple[Any, list[Attempt]]:
        with aichaos.call_scope(case) as scope:
            try:
                message = await acreate(sdk, extra_headers={CASE_HEADER: case})
                return text_of_message(message), scope.attempts
            except anthropic.APIError as exc:
                return exc, scope.attempts

    async with aichaos.inject(faults):
        results = await asyncio.gather(
            call("clears", aclient),
            call("outage", aclient),
            call("timeout", aclient.with_options(timeout=0.2)),
        )
    (text, clears), (overloaded, outage), (timed_out, timeouts) = results
    assert text == baseline
    assert [a.status for a in clears] == [429, 429, 200]
    assert_retry_after(clears, 1.0, sleeps.of("clears"), SCALE)  # 0.2 s sent as `1`
    assert type(overloaded) is anthropic.OverloadedError
    assert [a.status for a in outage] == [529] * 3
    assert_backoff(outage, sleeps.of("outage"), SCALE)
    assert type(timed_out) is anthropic.APITimeoutError
    assert [a.error for a in timeouts] == ["httpx2.ReadTimeout"] * 3
    assert_backoff(timeouts, sleeps.of("timeout"), SCALE)
    for case, attempts in zip(
        ("clears", "outage", "timeout"), (clears, outage, timeouts), strict=True
    ):
        assert {a.call_id for a in attempts} == {case}


@pytest.mark.anyio
async def test_async_stream_faults(aclient: anthropic.AsyncAnthropic, baseline: str) -> None:
    import httpx2

    faults = [
        {"kind": "slow_stream", "ttft": 0.25, "inter_token": 0},
        {"kind": "stream_cut", "mode": "drop", "after": 3},
    ]
    async with aichaos.inject(faults) as chaos:
        started = time.perf_counter()
        stream = await acreate(aclient, stream=True)
        received: list[RawMessageStreamEvent] = []
        first_at = None
        with pytest.raises(httpx2.RemoteProtocolError):
            async for event in stream:
                received.append(event)
                if first_at is None and event.type == "content_block_delta":
                    first_at = time.perf_counter()
    assert first_at is not None and first_at - started >= 0.25 - SLACK
    assert text_of(received) == " ".join(words(baseline)[:3])
    assert chaos.attempts[0].faults == ["slow_stream", "stream_cut(drop)"]


@pytest.mark.anyio
async def test_async_stream_error_event(aclient: anthropic.AsyncAnthropic) -> None:
    fault = {"kind": "stream_cut", "mode": "error_event", "after": 1, "error_type": "api_error"}
    async with aichaos.inject([fault]) as chaos:
        stream = await acreate(aclient, stream=True)
        with pytest.raises(anthropic.APIStatusError) as info:
            async for _ in stream:
                pass
    assert type(info.value) is anthropic.APIStatusError
    assert info.value.status_code == 200 and info.value.type == "api_error"
    assert info.value.body == {
        "type": "error",
        "error": {"details": None, "type": "api_error", "message": "Overloaded"},
        "request_id": info.value.request_id,
    }
    assert len(chaos.attempts) == 1


@pytest.mark.anyio
async def test_async_bad_tool_call_stream(
    aclient: anthropic.AsyncAnthropic, good_input: tuple[dict[str, Any], str]
) -> None:
    async with aichaos.inject([{"kind": "bad_tool_call", "variant": "invalid_json"}]):
        stream = await acreate(aclient, tools=ANTHROPIC_TOOLS, stream=True)
        fragments = [
            e.delta.partial_json
            async for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
    assert "".join(fragments) == "{" + good_input[1]
