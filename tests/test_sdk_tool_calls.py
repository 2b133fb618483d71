"""Bad tool calls against the real openai and anthropic SDKs: one table.

Each row is a `bad_tool_call` variant -> the tool's name, its arguments (compared with the
unfaulted call's: the same, `{}`, or broken JSON) and the finish reason, with the whole
answer (`create`) and streamed. openai gives the arguments as JSON text; anthropic gives an
`input` object (never anything else in a body: broken JSON there is an object of
stringified values), and its `messages.stream()` helper parses the streamed `partial_json`
itself (a broken one raises). Streamed, every
fragment is kept: a broken call is the good one with a stray brace up front.

Every row runs against each client of each SDK, all of a client's rows side by side; the rows
marked `aio` on each SDK's async client too.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import aichaos
from sdk_support import (
    ANTHROPIC_TOOLS,
    CLAUDE,
    GPT,
    MESSAGES,
    OPENAI_TOOLS,
    SDKS,
    Outcome,
    Sdk,
    applies,
    create,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
    sdk_client,
    then,
)

FINISH = {"openai": "tool_calls", "anthropic": "tool_use"}


@dataclass(frozen=True)
class BadCall:
    variant: str
    fault: dict[str, Any]
    tool: str  # the tool the call names
    arguments: str  # "good" (the unfaulted ones), "empty" (`{}`) or "broken" (not JSON)
    # anthropic's body (not streamed) when it differs: "stringified", an `input` object whose
    # values are the JSON text of the meant ones (the API never sends anything but an object)
    anthropic_body: str | None = None
    # openai's arguments when they differ: "blank", the empty string (not JSON either)
    openai_arguments: str | None = None
    providers: tuple[str, ...] = ("openai", "anthropic")
    aio: bool = False  # also on the SDK's async client (a representative subset)

    @property
    def name(self) -> str:
        return self.variant


ROWS = [
    BadCall("invalid_json", {"kind": "bad_tool_call", "variant": "invalid_json"},
            "get_weather", "broken", anthropic_body="stringified", aio=True),
    BadCall("unknown_tool",
            {"kind": "bad_tool_call", "variant": "unknown_tool", "tool_name": "launch_rocket"},
            "launch_rocket", "good"),
    BadCall("missing_arguments", {"kind": "bad_tool_call", "variant": "missing_arguments"},
            "get_weather", "empty"),
    # openai: `arguments: ""`, as reported from the API (the SDK hands the string over as it
    # is); anthropic: streams send no `partial_json`, bodies send `{}`: the SDK's `input` is `{}`
    BadCall("empty_arguments", {"kind": "bad_tool_call", "variant": "empty_arguments"},
            "get_weather", "empty", openai_arguments="blank"),
]  # fmt: skip


@dataclass
class Called:
    """The single tool call of an answer, as the app sees it."""

    name: str
    arguments: Any  # openai: JSON text; anthropic: `input` (the raw text when not JSON)
    finish: str | None
    streamed: str | None = None  # the arguments as streamed (anthropic's `partial_json`)
    helper_error: Exception | None = None  # what anthropic's stream helper raised


TOOLS = {"openai": OPENAI_TOOLS, "anthropic": ANTHROPIC_TOOLS}


def call_of(sdk: Sdk, client: Any, headers: dict[str, str], *, stream: bool) -> Any:
    """The answer's tool call (`Called`); for an async client, the coroutine that gives it.

    anthropic's streamed call is read twice: as events, then through `messages.stream()`,
    which parses the streamed input itself."""
    answer = create(sdk, client, tools=TOOLS[sdk.provider], stream=stream, extra_headers=headers)
    parse = PARSE[sdk.provider, stream]
    helper = sdk.provider == "anthropic" and stream
    if sdk.aio:
        return _acall_of(sdk, client, headers, then(sdk, answer, stream, parse), helper)
    found = parse(answer)
    return _helped(found, _final(client, headers)) if helper else found


async def _acall_of(
    sdk: Sdk, client: Any, headers: dict[str, str], answer: Any, helper: bool
) -> Called:
    found = await answer
    return _helped(found, await _afinal(client, headers)) if helper else found


def _openai_whole(completion: Any) -> Called:
    choice = completion.choices[0]
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    function = choice.message.tool_calls[0].function
    return Called(function.name, function.arguments, choice.finish_reason)


def _openai_streamed(chunks: Any) -> Called:
    name, arguments, reasons = "", "", []
    for chunk in chunks:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            if call.function is not None:
                name += call.function.name or ""
                arguments += call.function.arguments or ""
        if chunk.choices[0].finish_reason:
            reasons.append(chunk.choices[0].finish_reason)
    assert len(reasons) == 1
    return Called(name, arguments, reasons[0], streamed=arguments)


def _anthropic_whole(message: Any) -> Called:
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1
    return Called(blocks[0].name, blocks[0].input, message.stop_reason)


def _anthropic_streamed(answer: Any) -> Called:
    events = list(answer)
    names = [
        e.content_block.name
        for e in events
        if e.type == "content_block_start" and e.content_block.type == "tool_use"
    ]
    streamed = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    stops = [e.delta.stop_reason for e in events if e.type == "message_delta"]
    assert len(names) == 1 and len(stops) == 1
    return Called(names[0], None, stops[0], streamed=streamed)


PARSE: dict[tuple[str, bool], Callable[[Any], Called]] = {
    ("openai", False): _openai_whole,
    ("openai", True): _openai_streamed,
    ("anthropic", False): _anthropic_whole,
    ("anthropic", True): _anthropic_streamed,
}


def _helper(client: Any, headers: dict[str, str]) -> Any:
    return client.messages.stream(
        model=CLAUDE, max_tokens=1024, messages=MESSAGES, tools=ANTHROPIC_TOOLS,
        extra_headers=headers,
    )  # fmt: skip


def _final(client: Any, headers: dict[str, str]) -> Any:
    """The final message of anthropic's stream helper, or the ValueError it raised."""
    try:
        with _helper(client, headers) as helper:
            for _ in helper:
                pass
            return helper.get_final_message()
    except ValueError as exc:
        return exc


async def _afinal(client: Any, headers: dict[str, str]) -> Any:
    try:
        async with _helper(client, headers) as helper:
            async for _ in helper:
                pass
            return await helper.get_final_message()
    except ValueError as exc:
        return exc


def _helped(found: Called, final: Any) -> Called:
    """`found`, with the input as anthropic's helper parsed it (or the error it raised)."""
    if isinstance(final, ValueError):
        found.helper_error = final
        return found
    block = next(b for b in final.content if b.type == "tool_use")
    assert (block.name, final.stop_reason) == (found.name, found.finish)
    found.arguments = block.input
    return found


def case(row: BadCall, stream: bool) -> str:
    return f"{row.variant}-{'stream' if stream else 'create'}"


def run_rows(sdk: Sdk) -> dict[str, Outcome]:
    return run_side_by_side(
        sdk,
        {
            case(row, stream): ([row.fault], functools.partial(call_of, sdk, stream=stream))
            for row in ROWS
            if applies(row, sdk)
            for stream in (False, True)
        },
    )


outcomes = outcomes_fixture(run_rows)


@pytest.fixture(scope="module")
def good() -> dict[str, tuple[Called, Called]]:
    """Each provider's unfaulted tool call, whole and streamed."""
    found = {}
    with aichaos.inject():
        for sdk in (SDKS[0], SDKS[2]):
            with sdk_client(sdk) as client:
                whole, streamed = (
                    call_of(sdk, client, {}, stream=stream) for stream in (False, True)
                )
            assert (whole.name, whole.finish) == ("get_weather", FINISH[sdk.provider])
            assert (streamed.name, streamed.finish) == (whole.name, whole.finish)
            found[sdk.provider] = (whole, streamed)
    openai_whole, openai_streamed = found["openai"]
    assert set(json.loads(openai_whole.arguments)) == {"city", "unit"}
    assert openai_streamed.arguments == openai_whole.arguments
    anthropic_whole, anthropic_streamed = found["anthropic"]
    assert isinstance(anthropic_whole.arguments, dict)
    assert set(anthropic_whole.arguments) == {"city", "unit"}
    assert anthropic_streamed.streamed is not None
    assert json.loads(anthropic_streamed.streamed) == anthropic_whole.arguments
    return found


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(("sdk", "row"), rows_for(ROWS))
def test_bad_tool_call(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
    good: dict[str, tuple[Called, Called]],
    sdk: Sdk,
    row: BadCall,
    stream: bool,
) -> None:
    outcome = outcomes(sdk)[case(row, stream)]
    assert outcome.error is None
    found: Called = outcome.result
    assert (found.name, found.finish) == (row.tool, FINISH[sdk.provider])
    whole, streamed = good[sdk.provider]
    expected = (row.openai_arguments if sdk.provider == "openai" else None) or row.arguments
    if sdk.provider == "anthropic" and not stream and row.anthropic_body == "stringified":
        meant = whole.arguments
        assert isinstance(found.arguments, dict) and found.arguments != meant
        assert found.arguments == {key: json.dumps(value) for key, value in meant.items()}
        assert {key: json.loads(text) for key, text in found.arguments.items()} == meant
    elif expected == "good":
        assert found.arguments == whole.arguments
    elif expected == "blank":
        assert found.arguments == ""
        with pytest.raises(json.JSONDecodeError):
            json.loads(found.arguments)
    elif expected == "empty":
        assert found.arguments == ("{}" if sdk.provider == "openai" else {})
    elif sdk.provider == "anthropic" and stream:
        assert found.helper_error is not None
        assert "Unable to parse tool parameter JSON" in str(found.helper_error)
    else:
        assert isinstance(found.arguments, str)  # anthropic: the input is not an object
        with pytest.raises(json.JSONDecodeError):
            json.loads(found.arguments)
    if expected == "broken" and stream:
        assert found.streamed == "{" + (streamed.streamed or "")  # one stray brace up front
    reads = 2 if sdk.provider == "anthropic" and stream else 1  # the helper reads again
    assert [(a.status, a.outcome) for a in outcome.attempts] == [(200, "complete")] * reads
    named = [[f.partition("#")[0] for f in a.faults] for a in outcome.attempts]
    assert named == [[f"bad_tool_call({row.variant})"]] * reads


# --- openai only: what its JSON text arguments show ------------------------------------------


@pytest.fixture(params=[sdk for sdk in SDKS if sdk.provider == "openai"], ids=lambda s: s.id)
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    with sdk_client(request.param) as found:
        yield found


@pytest.mark.parametrize("after", [2, 50])
def test_truncated_stream_cuts_tool_arguments(client: Any, after: int) -> None:
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
@pytest.mark.parametrize("variant", ["invalid_json", "empty_arguments"])
def test_broken_tool_arguments(client: Any, stream: bool, variant: str) -> None:
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
