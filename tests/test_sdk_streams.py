"""Faults inside a started stream, against the real openai (3.x) and anthropic (2.x) SDKs.

Each row is a scenario of one provider: the fault -> what the SDK raises while the stream is
read (None: the stream ends without an error), the transport's exception under it (or raised
as it is: anthropic does not wrap mid-body errors), the text deltas that arrive before,
the finish reasons seen, how the attempt ended, and the silences the client sees. A failure
after the 200 is never retried: every row makes one attempt a read.

Every row runs against each client of its SDK (openai on httpx2 and on a plain
`httpx.Client`, anthropic on its default httpx2 client); all the rows of one client run side
by side, each with its own fault (matched by a header) and call scope, so the table takes as
long as its slowest row. The rows marked `aio` run on each SDK's async client too (tasks of
one event loop, each in its own call scope).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import aichaos
from aichaos.records import Attempt
from sdk_support import (
    CLAUDE,
    GPT,
    MESSAGES,
    SDKS,
    Outcome,
    Sdk,
    answer_text,
    applies,
    create,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
    sdk_client,
    transport_module,
    words,
)
from sdk_waits import SLACK


@dataclass(frozen=True)
class Streamed:
    """A stream fault of one provider and what its SDK makes of it."""

    provider: str
    name: str
    fault: dict[str, Any]
    error: str | None  # the SDK's exception class raised while reading (in its module)
    transport: str | None  # the transport's exception: its cause, or raised as is
    kept: int | None  # text deltas received; None: the whole answer
    finish: tuple[str | None, ...]  # finish (openai) or stop (anthropic) reasons seen
    outcome: str  # how the attempt ended (`Attempt.outcome`)
    timeout: float | None = None  # the client's read timeout
    helper: bool = False  # anthropic: also read through `messages.stream()` (a 2nd attempt)
    raw: bool = False  # also read the raw SSE lines (a 2nd attempt)
    usage: bool = False  # openai: ask for the usage chunk (`include_usage`)
    gap: float = 0.0  # silence between the 2nd and 3rd text deltas, at least
    ttft: float = 0.0  # the first text delta arrives this late, at least
    inter_token: float = 0.0  # and each later one this long after the one before, at least
    error_type: str | None = None  # an in-band error event's type and message
    error_message: str | None = None
    extra: tuple[dict[str, Any], ...] = ()  # faults acting alongside, in this order
    aio: bool = False  # also on the SDK's async client (a representative subset)


OVERLOADED = {"error_type": "overloaded", "message": "Try later."}
SERVER_ERROR = "The server had an error while processing your request."
STALL = {"kind": "stream_stall", "after": 2, "stall": 0.3}
STALL_PAST_TIMEOUT = {"kind": "stream_stall", "after": 2, "stall": 0.6}
KEEPALIVE = {"kind": "stream_stall", "after": 2, "stall": 0.35, "keepalive": 0.08}
SLOW = {"kind": "slow_stream", "ttft": 0.3, "inter_token": 0.015}
SLOW_START = {"kind": "slow_stream", "ttft": 0.25, "inter_token": 0}


def cut(mode: str, **params: Any) -> dict[str, Any]:
    return {"kind": "stream_cut", "mode": mode, "after": 3, **params}


ROWS = [
    # the connection drops mid-body: openai >= 3.22 wraps it, anthropic raises it raw
    Streamed("openai", "reset", {"kind": "connection_reset", "after_bytes": 700},
             "APIConnectionError", "RemoteProtocolError", None, (), "connection_dropped"),
    Streamed("anthropic", "reset", {"kind": "connection_reset", "after_bytes": 900},
             None, "RemoteProtocolError", None, (), "connection_dropped"),
    Streamed("openai", "stream_cut-drop", cut("drop"), "APIConnectionError",
             "RemoteProtocolError", 3, (), "connection_dropped"),
    Streamed("anthropic", "stream_cut-drop", cut("drop"), None, "RemoteProtocolError", 3, (),
             "connection_dropped", helper=True),
    # an in-band error event: openai's base APIError (no status), anthropic's APIStatusError
    # with the stream's own 200
    Streamed("openai", "stream_cut-error_event", cut("error_event"), "APIError", None, 3, (),
             "stream_error_event", error_type="server_error", error_message=SERVER_ERROR,
             aio=True),
    Streamed("openai", "stream_cut-error_event-custom", cut("error_event", **OVERLOADED),
             "APIError", None, 3, (), "stream_error_event", error_type="overloaded",
             error_message="Try later."),
    Streamed("anthropic", "stream_cut-error_event", cut("error_event"), "APIStatusError", None,
             3, (), "stream_error_event", helper=True, error_type="overloaded_error",
             error_message="Overloaded"),
    Streamed("anthropic", "stream_cut-error_event-api_error",
             cut("error_event", after=1, error_type="api_error"), "APIStatusError", None, 1, (),
             "stream_error_event", error_type="api_error", error_message="Overloaded", aio=True),
    # no final event: no error, the stream just ends (and the usage chunk never comes)
    Streamed("openai", "stream_cut-no_terminator", cut("no_terminator"), None, None, 3, (),
             "stream_incomplete", usage=True),
    Streamed("anthropic", "stream_cut-no_terminator", cut("no_terminator"), None, None, 3, (),
             "stream_incomplete", helper=True),
    # silences: within the read timeout, beyond it, kept alive by keep-alives or pings
    Streamed("openai", "stream_stall", STALL, None, None, None, ("stop",), "complete",
             gap=0.3),
    Streamed("anthropic", "stream_stall", STALL, None, None, None, ("end_turn",), "complete",
             gap=0.3),
    Streamed("openai", "stream_stall-beyond-timeout", STALL_PAST_TIMEOUT, "APITimeoutError",
             "ReadTimeout", 2, (), "stalled", timeout=0.25),
    Streamed("anthropic", "stream_stall-beyond-timeout", STALL_PAST_TIMEOUT, None,
             "ReadTimeout", 2, (), "stalled", timeout=0.25),
    Streamed("openai", "stream_stall-keepalive", KEEPALIVE, None, None, None, ("stop",),
             "complete", timeout=0.2, raw=True),
    Streamed("anthropic", "stream_stall-keepalive", KEEPALIVE, None, None, None, ("end_turn",),
             "complete", timeout=0.2, raw=True),
    Streamed("openai", "slow_stream", SLOW, None, None, None, ("stop",), "complete", ttft=0.3,
             inter_token=0.015),
    Streamed("anthropic", "slow_stream", SLOW, None, None, None, ("end_turn",), "complete",
             ttft=0.3, inter_token=0.015),
    # a late first token, then the connection drops
    Streamed("openai", "slow_stream-then-drop", SLOW_START, "APIConnectionError",
             "RemoteProtocolError", 3, (), "connection_dropped", ttft=0.25, extra=(cut("drop"),),
             aio=True),
    Streamed("anthropic", "slow_stream-then-drop", SLOW_START, None, "RemoteProtocolError", 3,
             (), "connection_dropped", ttft=0.25, extra=(cut("drop"),), aio=True),
]  # fmt: skip


# --- reading a stream, whatever the SDK ---------------------------------------------------


@dataclass
class Read:
    """One stream as the app saw it: its events, and the error that ended it."""

    started: float
    events: list[Any] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the text deltas
    stamps: list[float] = field(default_factory=list)  # when each text delta arrived
    finish: list[str | None] = field(default_factory=list)
    error: Exception | None = None
    lines: list[str] = field(default_factory=list)  # the raw SSE lines, when read
    helper: Any = None  # anthropic's `messages.stream()`: its final message or exception

    def see(self, sdk: Sdk, event: Any) -> None:
        self.events.append(event)
        text, finished, reason = text_and_finish(sdk, event)
        if text is not None:
            self.texts.append(text)
            self.stamps.append(time.perf_counter())
        if finished:
            self.finish.append(reason)


def text_and_finish(sdk: Sdk, event: Any) -> tuple[str | None, bool, str | None]:
    """(text delta, whether the event says how the answer finished, the reason)."""
    if sdk.provider == "anthropic":
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            return event.delta.text, False, None
        if event.type == "message_delta":
            return None, True, event.delta.stop_reason
        return None, False, None
    choice = event.choices[0] if event.choices else None
    reason = choice.finish_reason if choice else None
    return (choice.delta.content or None) if choice else None, reason is not None, reason


def read(sdk: Sdk, client: Any, headers: dict[str, str], *, row: Streamed) -> Any:
    """The stream as the app saw it (`Read`); for an async client, the coroutine that reads it."""
    if row.timeout is not None:
        client = client.with_options(timeout=row.timeout)
    extra: dict[str, Any] = {"extra_headers": headers}
    if row.usage:
        extra["stream_options"] = {"include_usage": True}
    found = Read(started=time.perf_counter())
    if sdk.aio:
        return aread(sdk, create(sdk, client, stream=True, **extra), found, row)
    try:
        for event in create(sdk, client, stream=True, **extra):
            found.see(sdk, event)
    except Exception as exc:
        found.error = exc
    if row.raw:
        found.lines = raw_lines(sdk, client, headers)
    if row.helper:
        try:
            found.helper = final_message(client, headers)
        except Exception as exc:
            found.helper = exc
    return found


async def aread(sdk: Sdk, answer: Any, found: Read, row: Streamed) -> Read:
    assert not (row.raw or row.helper), "the async subset reads the stream itself only"
    try:
        async for event in await answer:
            found.see(sdk, event)
    except Exception as exc:
        found.error = exc
    return found


def raw_lines(sdk: Sdk, client: Any, headers: dict[str, str]) -> list[str]:
    if sdk.provider == "anthropic":
        api: Any = client.messages.with_streaming_response
        raw = api.create(model=CLAUDE, max_tokens=1024, messages=MESSAGES, stream=True,
                         extra_headers=headers)  # fmt: skip
    else:
        api = client.chat.completions.with_streaming_response
        raw = api.create(model=GPT, messages=MESSAGES, stream=True, extra_headers=headers)
    with raw as response:
        return list(response.iter_lines())


def final_message(client: Any, headers: dict[str, str]) -> Any:
    """The message anthropic's stream helper accumulates from the events."""
    with client.messages.stream(
        model=CLAUDE, max_tokens=1024, messages=MESSAGES, extra_headers=headers
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


def run_rows(sdk: Sdk) -> dict[str, Outcome]:
    mine = [row for row in ROWS if applies(row, sdk)]
    return run_side_by_side(
        sdk,
        {
            row.name: ([row.fault, *row.extra], functools.partial(read, sdk, row=row))
            for row in mine
        },
    )


outcomes = outcomes_fixture(run_rows)


def row_of(name: str, provider: str) -> Streamed:
    return next(row for row in ROWS if (row.name, row.provider) == (name, provider))


def stream_of(
    outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Streamed
) -> tuple[Read, list[Attempt]]:
    outcome = outcomes(sdk)[row.name]
    assert outcome.error is None  # `read` keeps what the stream raised
    assert {a.call_id for a in outcome.attempts} == {row.name}
    reads = 1 + row.raw + row.helper
    assert [a.status for a in outcome.attempts] == [200] * reads  # never retried
    result: Read = outcome.result
    return result, outcome.attempts


# --- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(("sdk", "row"), rows_for(ROWS))
def test_stream_fault(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
    baselines: dict[str, str],
    sdk: Sdk,
    row: Streamed,
) -> None:
    found, attempts = stream_of(outcomes, sdk, row)
    transport = transport_module(sdk.flavor)
    exc = found.error
    if row.error is not None:
        assert exc is not None and type(exc) is getattr(sdk.module, row.error)
        if row.transport is not None:
            assert isinstance(exc.__cause__, getattr(transport, row.transport))
    elif row.transport is not None:
        assert type(exc) is getattr(transport, row.transport)  # raw, like any mid-body failure
    else:
        assert exc is None
    baseline = baselines[sdk.provider]
    if row.kept is None and exc is None:
        assert "".join(found.texts) == baseline
    elif row.kept is None:
        assert found.events  # the first events arrived before the cut
    else:
        assert len(found.texts) == row.kept
        assert "".join(found.texts) == " ".join(words(baseline)[: row.kept])
    assert found.finish == list(row.finish)
    first = attempts[0]
    assert first.outcome == row.outcome
    named = [f.partition("#")[0] for f in first.faults]
    assert named == [label(fault) for fault in (row.fault, *row.extra)]
    if row.transport is not None:
        assert first.error == f"{sdk.flavor}.{row.transport}"
    if row.gap:
        assert found.stamps[2] - found.stamps[1] >= row.gap - SLACK  # after the 2nd token
    if row.ttft:
        assert found.stamps[0] - found.started >= row.ttft - SLACK  # the first token is late
        assert first.ttft is not None and first.ttft >= row.ttft - SLACK
        later = (len(found.stamps) - 1) * row.inter_token
        assert found.stamps[-1] - found.stamps[0] >= later - SLACK  # and the rest slow


def label(fault: dict[str, Any]) -> str:
    """How an attempt's record names the fault."""
    kind = fault["kind"]
    return f"{kind}({fault['mode']})" if kind == "stream_cut" else kind


# --- what one SDK alone shows -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdk", "row"),
    rows_for([r for r in ROWS if r.error_type is not None and r.provider == "openai"]),
)
def test_openai_error_event_is_an_api_error_without_status(
    outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Streamed
) -> None:
    found, _ = stream_of(outcomes, sdk, row)
    exc: Any = found.error
    assert not hasattr(exc, "status_code")
    assert exc.message == row.error_message
    assert exc.body == {
        "message": row.error_message,
        "type": row.error_type,
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    ("sdk", "row"),
    rows_for([r for r in ROWS if r.error_type is not None and r.provider == "anthropic"]),
)
def test_anthropic_error_event_has_the_stream_status_and_request_id(
    outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Streamed
) -> None:
    import anthropic

    found, attempts = stream_of(outcomes, sdk, row)
    if row.helper:
        assert type(found.helper) is anthropic.APIStatusError  # the helper raises it too
    for exc in (found.error, found.helper) if row.helper else (found.error,):
        assert isinstance(exc, anthropic.APIStatusError)
        assert exc.status_code == 200
        assert exc.type == row.error_type
        # As production streams send it: `details` null and the stream's own request id.
        assert exc.body == {
            "type": "error",
            "error": {"details": None, "type": row.error_type, "message": row.error_message},
            "request_id": exc.request_id,
        }
        assert exc.request_id is not None
        assert re.fullmatch(r"req_011C[1-9A-HJ-NP-Za-km-z]{20}", exc.request_id)
        assert exc.details is None and exc.error_code is None
    assert [a.outcome for a in attempts] == ["stream_error_event"] * (1 + row.helper)


def test_anthropic_reset_arrives_after_message_start(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
) -> None:
    found, _ = stream_of(outcomes, SDKS[2], row_of("reset", "anthropic"))
    assert found.events[0].type == "message_start"


def test_anthropic_stream_helper_raises_a_dropped_stream_raw(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
) -> None:
    import httpx2

    found, attempts = stream_of(outcomes, SDKS[2], row_of("stream_cut-drop", "anthropic"))
    assert type(found.helper) is httpx2.RemoteProtocolError
    assert [a.error for a in attempts] == ["httpx2.RemoteProtocolError"] * 2


def test_no_terminator_leaves_the_answer_unfinished(
    outcomes: Callable[[Sdk], dict[str, Outcome]], baselines: dict[str, str]
) -> None:
    for sdk in SDKS[:2]:  # openai: the usage chunk asked for never arrives
        found, _ = stream_of(outcomes, sdk, row_of("stream_cut-no_terminator", "openai"))
        assert found.events and all(c.usage is None for c in found.events)
    found, _ = stream_of(outcomes, SDKS[2], row_of("stream_cut-no_terminator", "anthropic"))
    types = [e.type for e in found.events]
    assert "message_delta" not in types and "message_stop" not in types
    message = found.helper  # no error: the partial message, unfinished
    assert message.stop_reason is None
    text = "".join(b.text for b in message.content if b.type == "text")
    assert text == " ".join(words(baselines["anthropic"])[:3])


@pytest.mark.parametrize(
    ("sdk", "keepalive", "at_least", "last"),
    [
        (SDKS[0], ": keep-alive", 3, ["data: [DONE]"]),
        (SDKS[1], ": keep-alive", 3, ["data: [DONE]"]),
        # the mock's own ping, then the keep-alives
        (SDKS[2], "event: ping", 1 + 3, ["event: message_stop", 'data: {"type":"message_stop"}']),
    ],
    ids=lambda value: value.id if isinstance(value, Sdk) else None,
)
def test_keepalives_are_sent_and_not_yielded(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
    sdk: Sdk,
    keepalive: str,
    at_least: int,
    last: list[str],
) -> None:
    found, _ = stream_of(outcomes, sdk, row_of("stream_stall-keepalive", sdk.provider))
    assert found.lines.count(keepalive) >= at_least
    assert [line for line in found.lines if line][-len(last) :] == last
    if sdk.provider == "anthropic":
        assert "ping" not in {e.type for e in found.events}  # the SDK skips pings


@pytest.mark.parametrize("sdk", SDKS, ids=lambda sdk: sdk.id)
def test_stream_faults_leave_whole_answers_alone(sdk: Sdk, baselines: dict[str, str]) -> None:
    faults = [
        {"kind": "slow_stream", "ttft": 5},
        {"kind": "stream_cut", "after": 0},
        {"kind": "stream_stall", "after": 0, "stall": 5},
    ]
    with sdk_client(sdk) as client, aichaos.inject(faults) as chaos:
        assert answer_text(sdk, client, False, {}) == baselines[sdk.provider]
    assert chaos.attempts[0].faults == []
