"""A stateful limiter that counts real requests and tokens, as the provider's own limiter does."""

from __future__ import annotations

import random
import time
from collections import deque
from typing import ClassVar, Literal

from pydantic import Field, PrivateAttr, model_validator

from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.units import Duration


class RateLimiter(Fault):
    """Requests- and tokens-per-minute limits over a sliding window.

    Admitted requests count against `rpm` at once; their tokens count against
    `tpm` when the answer completes (the usage the provider reported, streams
    included; a stream that reports none counts its content deltas). Over a
    limit, the request gets the provider's 429 with a `retry-after` saying when
    the window frees up, as that provider sends it: whole seconds, rounded up, on
    Anthropic (and Azure, which adds the exact `retry-after-ms`); OpenAI keeps
    the precision in `retry-after`; Gemini's `RetryInfo.retryDelay` keeps it too.

    Each backend has its own window: with `backend: '*'` (or a list) every
    backend is limited separately, as each provider limits its own keys, so
    traffic to one never uses up another's budget.
    """

    summary: ClassVar[str] = "stateful requests/tokens-per-minute limiter counting real usage"
    terminal: ClassVar[bool] = True
    kind: Literal["rate_limiter"] = "rate_limiter"
    rpm: int | None = Field(None, ge=1, description="Requests allowed per `per`.")
    tpm: int | None = Field(None, ge=1, description="Tokens allowed per `per`.")
    per: Duration = Field(60.0, description="Length of the sliding window.")

    _windows: dict[str, _Window] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _needs_a_limit(self) -> RateLimiter:
        if self.rpm is None and self.tpm is None:
            raise ValueError("rate_limiter needs rpm, tpm or both")
        return self

    def _window(self, backend: str) -> _Window:
        window = self._windows.get(backend)
        if window is None:
            window = self._windows[backend] = _Window()
        return window

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        now = time.monotonic()
        window = self._window(plan.req.backend)
        window.prune(now, self.per)
        if self.rpm is not None and len(window.requests) >= self.rpm:
            wait = window.requests[0] + self.per - now
            plan.reply = plan.provider.rate_limited(
                plan.req, scope="requests", retry_after=max(wait, 0.001), limit=self.rpm
            )
            return True
        if self.tpm is not None and window.token_total >= self.tpm:
            wait = window.tokens[0][0] + self.per - now
            plan.reply = plan.provider.rate_limited(
                plan.req, scope="tokens", retry_after=max(wait, 0.001), limit=self.tpm
            )
            return True
        window.requests.append(now)
        return False

    def observe(self, plan: Plan, status: int, tokens: int) -> None:
        if tokens > 0:
            window = self._window(plan.req.backend)
            window.tokens.append((time.monotonic(), tokens))
            window.token_total += tokens

    def usage(self, backend: str) -> tuple[int, int]:
        """Requests and tokens counted in `backend`'s current window."""
        window = self._window(backend)
        window.prune(time.monotonic(), self.per)
        return len(window.requests), window.token_total


class _Window:
    """One backend's sliding window: admitted request times, and (time, tokens) of answers."""

    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_total = 0

    def prune(self, now: float, per: float) -> None:
        horizon = now - per
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.token_total -= self.tokens.popleft()[1]
