"""Shared pieces of the tests that drive the real openai and anthropic SDKs through inject().

What the assertions expect comes from the reference on provider wire formats and SDK
behaviour (openai 3.57, anthropic 2.14): exception classes, statuses, error bodies, how many
attempts the SDK makes with its default `max_retries=2`, and how long it waits in between.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import aichaos
from aichaos.records import Attempt

API_KEY = "sk-aichaos-planted-secret-5f0c2e9b7a"
PROMPT = "Describe the weather in Paris today"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
GPT = "gpt-4o"
CLAUDE = "claude-sonnet-4-6"

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city", "unit"],
}
OPENAI_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
]
ANTHROPIC_TOOLS: list[dict[str, Any]] = [
    {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER}
]

# Without a usable retry-after both SDKs back off 0.5 * 2**n * (1 - 0.25 * random()):
# the first wait is 0.375-0.5 s, the second 0.75-1.0 s.
FIRST_BACKOFF = 0.375
SECOND_BACKOFF = 0.75
SLACK = 0.01  # clock and sleep granularity, for lower bounds


def waits(attempts: Sequence[Attempt]) -> list[float]:
    """Seconds from the end of each attempt to the start of the next: the SDK's sleep."""
    return [
        later.started - (earlier.started + (earlier.duration or 0.0))
        for earlier, later in itertools.pairwise(attempts)
    ]


def assert_backoff(attempts: Sequence[Attempt]) -> None:
    """Three attempts spaced by the SDK's own exponential backoff (no retry-after honoured)."""
    assert len(attempts) == 3
    first, second = waits(attempts)
    assert first >= FIRST_BACKOFF - SLACK
    assert second >= SECOND_BACKOFF - SLACK


def assert_retry_after(attempts: Sequence[Attempt], seconds: float) -> None:
    """Every wait between attempts followed a retry-after of `seconds`, not the backoff.

    The lower bound shows the SDK waited at least as asked. With two or more waits, the
    backoff would make the second one >= 0.75 s; with one wait, `seconds` must exceed the
    backoff's first wait (0.5 s) for the lower bound alone to tell them apart.
    """
    found = waits(attempts)
    assert found, "the SDK did not retry"
    assert min(found) >= seconds - SLACK, found
    if len(found) >= 2:
        assert seconds < SECOND_BACKOFF - 0.2
        assert max(found) < SECOND_BACKOFF - 0.05, found
    else:
        assert seconds > 0.5


def read_until_error(stream: Any) -> tuple[list[Any], Exception]:
    """Iterate a stream until it raises; the items received before, and the exception."""
    received: list[Any] = []
    try:
        for item in stream:
            received.append(item)
    except Exception as exc:
        return received, exc
    raise AssertionError(f"the stream ended without an error after {len(received)} items")


def transport_module(flavor: str) -> ModuleType:
    """`httpx` or `httpx2`: the library whose exceptions a client of that flavour raises."""
    return importlib.import_module(flavor)


def words(text: str) -> list[str]:
    return text.split(" ")


def looks_scrambled(original: str, scrambled: str) -> bool:
    """Same words, letters shuffled inside them (first and last kept), and not all unchanged."""
    before, after = words(original), words(scrambled)
    if len(before) != len(after):
        return False
    for old, new in zip(before, after, strict=True):
        if sorted(old) != sorted(new) or old[:1] != new[:1] or old[-1:] != new[-1:]:
            return False
    return before != after


CASE_HEADER = "x-test-case"


def for_case(case: str, fault: dict[str, Any]) -> dict[str, Any]:
    """`fault`, acting only on requests that carry the case's header."""
    return {**fault, "match": {"headers": {CASE_HEADER: case}}}


@dataclass
class Outcome:
    """What one call returned or raised, and the attempts made on its behalf."""

    result: Any
    error: BaseException | None
    attempts: list[Attempt]


def run_concurrently(calls: dict[str, Callable[[dict[str, str]], Any]]) -> dict[str, Outcome]:
    """Run each call in its own thread and call scope, passing it the case's header.

    The SDKs' retry waits are sleeps: run side by side, a dozen retried calls take as long as
    the slowest one. Each call's attempts come from its own `aichaos.call_scope`.
    """

    def one(case: str, call: Callable[[dict[str, str]], Any]) -> Outcome:
        with aichaos.call_scope(case) as scope:
            try:
                return Outcome(call({CASE_HEADER: case}), None, scope.attempts)
            except Exception as exc:
                return Outcome(None, exc, scope.attempts)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {case: pool.submit(one, case, call) for case, call in calls.items()}
    return {case: future.result() for case, future in futures.items()}
