"""The retry waits of the openai and anthropic SDKs, as the SDK tests check them.

Both SDKs sleep between attempts in their `_base_client` retry loops (`time.sleep`,
`anyio.sleep`) for the delay `_calculate_retry_timeout` computed: a retry-after the server
sent, or their own exponential backoff. `SdkSleeps` records each delay (and sleeps it, or a
fraction of it); the real waits between attempts are bounded from below only.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import anthropic
import anthropic._base_client
import anyio
import openai
import openai._base_client
import pytest

import aichaos.faults.kinds.rate_limiter
from aichaos.records import Attempt, current_call

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


def assert_backoff(
    attempts: Sequence[Attempt], sleeps: Sequence[float], scale: float = 1.0
) -> None:
    """Three attempts spaced by the SDK's own exponential backoff (no retry-after honoured).

    `sleeps` are the delays the SDK computed (`SdkSleeps`): each within its backoff range;
    the real waits between attempts are at least that long (times the recorder's `scale`).
    """
    assert len(attempts) == 3
    assert len(sleeps) == 2, sleeps
    assert FIRST_BACKOFF <= sleeps[0] <= 0.5, sleeps
    assert SECOND_BACKOFF <= sleeps[1] <= 1.0, sleeps
    first, second = waits(attempts)
    assert first >= FIRST_BACKOFF * scale - SLACK
    assert second >= SECOND_BACKOFF * scale - SLACK


def assert_retry_after(
    attempts: Sequence[Attempt], seconds: float, sleeps: Sequence[float], scale: float = 1.0
) -> None:
    """Every wait between attempts followed a retry-after of `seconds`, not the backoff.

    `sleeps` are the delays the SDK computed (`SdkSleeps`): exactly the retry-after each
    time; the real waits between attempts are at least that long (times the recorder's
    `scale`).
    """
    found = waits(attempts)
    assert found, "the SDK did not retry"
    assert list(sleeps) == pytest.approx([seconds] * len(found)), sleeps
    assert min(found) >= seconds * scale - SLACK, found


class SdkSleeps:
    """Records the delay of every retry sleep the openai and anthropic SDKs ask for, by
    aichaos call id (None outside a call scope), and still sleeps it.

    It stands in for the `time` and `anyio` modules inside each SDK's `_base_client`,
    whose retry loops call `time.sleep(timeout)` and `await anyio.sleep(timeout)` with the
    delay `_calculate_retry_timeout` computed. With `scale` below 1 it sleeps only that
    fraction of each delay (recording the delay itself): Anthropic's whole-second
    `retry-after` is then checked from the SDK's own computation without the suite waiting
    whole seconds, and each retry still really waits before it is sent.
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.by_call: dict[str | None, list[float]] = {}
        self.listeners: list[Callable[[float], None]] = []
        self._lock = threading.Lock()

    def _record(self, seconds: float) -> None:
        scope = current_call()
        with self._lock:
            self.by_call.setdefault(scope.id if scope else None, []).append(seconds)
        for listener in self.listeners:
            listener(seconds)

    def of(self, call_id: str | None = None) -> list[float]:
        return list(self.by_call.get(call_id, []))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> SdkSleeps:
        recorder = self

        class _Time:
            def sleep(self, seconds: float) -> None:
                recorder._record(seconds)
                time.sleep(seconds * recorder.scale)

            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

        class _Anyio:
            async def sleep(self, seconds: float) -> None:
                recorder._record(seconds)
                await anyio.sleep(seconds * recorder.scale)

            def __getattr__(self, name: str) -> Any:
                return getattr(anyio, name)

        for module in (openai._base_client, anthropic._base_client):
            monkeypatch.setattr(module, "time", _Time())
            monkeypatch.setattr(module, "anyio", _Anyio())
        return self


class SleepClock:
    """A monotonic clock that moves only by the SDK's retry sleeps, for the rate limiter:
    what it counts then depends on the calls, never on the machine's load.

    `install` puts it in place of the limiter's `time` module and ties it to `sleeps`.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def install(self, monkeypatch: pytest.MonkeyPatch, sleeps: SdkSleeps) -> SleepClock:
        monkeypatch.setattr(aichaos.faults.kinds.rate_limiter, "time", self)
        sleeps.listeners.append(self.advance)
        return self
