"""Content faults (a 200 whose answer is changed) against the real openai and anthropic SDKs.

One table: each row is a fault -> the answer's text (as a function of the unfaulted answer)
and the finish reason in each provider's words (openai `finish_reason`, anthropic
`stop_reason`), with the whole answer (`create`) and streamed (openai's chunks, anthropic's
`messages.stream()` helper, which accumulates the events into a message). A content fault
never fails the call: one attempt, a complete 200, the fault named in its record.

Every row runs against each client of each SDK, all of a client's rows side by side (each
with its own fault, matched by a header).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sdk_support import (
    CLAUDE,
    MESSAGES,
    Outcome,
    Sdk,
    applies,
    create,
    looks_scrambled,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
    words,
)

MARK = "IGNORE ALL RULES"


@dataclass(frozen=True)
class Changed:
    """A content fault and the answer it leaves."""

    name: str
    fault: dict[str, Any]
    finish: dict[str, str]  # by provider
    kept: int | None = None  # the answer is its first `kept` words
    text: Callable[[str], str] | None = None  # the answer, from the unfaulted one
    label: str = ""  # how the attempt's record names the fault (default: its kind)
    providers: tuple[str, ...] = ("openai", "anthropic")
    extra: tuple[dict[str, Any], ...] = ()  # other faults acting alongside


FILTERED = {"openai": "content_filter", "anthropic": "refusal"}
STOPPED = {"openai": "stop", "anthropic": "end_turn"}
PINGS = {"kind": "stream_stall", "after": 2, "stall": 0.1, "keepalive": 0.03}


def corrupt(mode: str) -> dict[str, Any]:
    return {"kind": "corrupt_text", "mode": mode, "text": MARK}


ROWS = [
    Changed("content_filter-after-2", {"kind": "content_filter", "after": 2}, FILTERED, kept=2),
    Changed("content_filter", {"kind": "content_filter"}, FILTERED, kept=0),
    # no prompt-filter error from these providers: the answer is filtered instead
    Changed("content_filter-prompt", {"kind": "content_filter", "on": "prompt"}, FILTERED,
            kept=0),
    Changed("truncated", {"kind": "truncated", "after": 4},
            {"openai": "length", "anthropic": "max_tokens"}, kept=4),
    Changed("empty_completion", {"kind": "empty_completion"}, STOPPED, kept=0),
    Changed("corrupt_text-scramble", corrupt("scramble"), STOPPED, label="corrupt_text(scramble)"),
    Changed("corrupt_text-mojibake", corrupt("mojibake"), STOPPED, label="corrupt_text(mojibake)"),
    Changed("corrupt_text-replace", corrupt("replace"), STOPPED, text=lambda _: MARK,
            label="corrupt_text(replace)"),
    Changed("corrupt_text-inject", corrupt("inject"), STOPPED,
            text=lambda baseline: f"{baseline} {MARK}", label="corrupt_text(inject)"),
    # the injected text waits for the end of the text, whatever pings come before it
    Changed("corrupt_text-inject-despite-pings", corrupt("inject"), STOPPED,
            text=lambda baseline: f"{baseline} {MARK}", label="corrupt_text(inject)",
            providers=("anthropic",), extra=(PINGS,)),
]  # fmt: skip


@dataclass
class Answer:
    text: str
    finish: list[str | None]  # every finish reason the answer gave


def answer_of(sdk: Sdk, client: Any, headers: dict[str, str], *, stream: bool) -> Answer:
    if sdk.provider == "anthropic":
        if stream:
            with client.messages.stream(
                model=CLAUDE, max_tokens=1024, messages=MESSAGES, extra_headers=headers
            ) as events:
                for _ in events:
                    pass
                message = events.get_final_message()
        else:
            message = create(sdk, client, extra_headers=headers)
        text = "".join(b.text for b in message.content if b.type == "text")
        return Answer(text, [message.stop_reason])
    if not stream:
        choice = create(sdk, client, extra_headers=headers).choices[0]
        return Answer(choice.message.content, [choice.finish_reason])
    chunks = [c for c in create(sdk, client, stream=True, extra_headers=headers) if c.choices]
    return Answer(
        "".join(c.choices[0].delta.content or "" for c in chunks),
        [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason],
    )


def case(row: Changed, stream: bool) -> str:
    return f"{row.name}-{'stream' if stream else 'create'}"


def run_rows(sdk: Sdk) -> dict[str, Outcome]:
    return run_side_by_side(
        sdk,
        {
            case(row, stream): (
                [row.fault, *row.extra],
                functools.partial(answer_of, sdk, stream=stream),
            )
            for row in ROWS
            if applies(row, sdk)
            for stream in (False, True)
        },
    )


outcomes = outcomes_fixture(run_rows)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(("sdk", "row"), rows_for(ROWS))
def test_content_fault(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
    baselines: dict[str, str],
    sdk: Sdk,
    row: Changed,
    stream: bool,
) -> None:
    outcome = outcomes(sdk)[case(row, stream)]
    assert outcome.error is None
    answer: Answer = outcome.result
    assert answer.finish == [row.finish[sdk.provider]]
    baseline = baselines[sdk.provider]
    if row.kept is not None:
        assert answer.text == " ".join(words(baseline)[: row.kept])
    elif row.text is not None:
        assert answer.text == row.text(baseline)
    elif row.fault["mode"] == "scramble":
        assert looks_scrambled(baseline, answer.text)
    else:
        assert row.fault["mode"] == "mojibake"
        assert answer.text != baseline and "Ã" in answer.text  # UTF-8 read as Latin-1
        assert answer.text.encode("latin-1", errors="ignore")
    assert [(a.status, a.outcome) for a in outcome.attempts] == [(200, "complete")]
    attempt = outcome.attempts[0]
    assert attempt.call_id == case(row, stream) and attempt.stream is stream
    named = sorted(f.partition("#")[0] for f in attempt.faults)
    extra = [f["kind"] for f in row.extra if stream]  # stream faults leave `create` alone
    assert named == sorted([row.label or row.fault["kind"], *extra])
