"""`latency` against the real openai (3.x) and anthropic (2.x) SDKs: one table.

Each row is a way of asking (the whole answer, or streamed) -> the unfaulted answer, late by
the delay: the call takes at least that long, the answer's headers come that late, and the
attempt's record names the fault. Waits are bounded from below only.

Every row runs against each client of each SDK, all of a client's rows side by side (each
with its own fault, matched by a header), so the table takes one delay per client.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import pytest

from sdk_support import (
    Outcome,
    Outcomes,
    Sdk,
    answer_text,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
)
from sdk_waits import SLACK

DELAY = 0.3


@dataclass(frozen=True)
class Late:
    name: str
    stream: bool
    fault: dict[str, Any]
    providers: tuple[str, ...] = ("openai", "anthropic")


ROWS = [
    Late("create", False, {"kind": "latency", "delay": DELAY}),
    Late("stream", True, {"kind": "latency", "delay": DELAY}),
]


def timed(sdk: Sdk, client: Any, headers: dict[str, str], *, row: Late) -> tuple[str, float]:
    """The answer's text, and how long the call took to give it whole."""
    started = time.perf_counter()
    text = answer_text(sdk, client, row.stream, headers)
    return text, time.perf_counter() - started


def run_rows(sdk: Sdk) -> dict[str, Outcome]:
    return run_side_by_side(
        sdk, {row.name: ([row.fault], functools.partial(timed, sdk, row=row)) for row in ROWS}
    )


outcomes = outcomes_fixture(run_rows)


@pytest.mark.parametrize(("sdk", "row"), rows_for(ROWS))
def test_latency(outcomes: Outcomes, baselines: dict[str, str], sdk: Sdk, row: Late) -> None:
    outcome = outcomes(sdk)[row.name]
    assert outcome.error is None
    text, took = outcome.result
    assert text == baselines[sdk.provider]
    assert took >= DELAY - SLACK
    [attempt] = outcome.attempts
    assert attempt.headers_at is not None and attempt.headers_at >= DELAY - SLACK
    assert [f.partition("#")[0] for f in attempt.faults] == ["latency"]
    assert attempt.stream is row.stream
