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
    the window frees up.
    """

    summary: ClassVar[str] = "stateful requests/tokens-per-minute limiter counting real usage"
    terminal: ClassVar[bool] = True
    kind: Literal["rate_limiter"] = "rate_limiter"
    rpm: int | None = Field(None, ge=1, description="Requests allowed per `per`.")
    tpm: int | None = Field(None, ge=1, description="Tokens allowed per `per`.")
    per: Duration = Field(60.0, description="Length of the sliding window.")

    _requests: deque[float] = PrivateAttr(default_factory=deque)
    _tokens: deque[tuple[float, int]] = PrivateAttr(default_factory=deque)
    _token_total: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _needs_a_limit(self) -> RateLimiter:
        if self.rpm is None and self.tpm is None:
            raise ValueError("rate_limiter needs rpm, tpm or both")
        return self

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        now = time.monotonic()
        self._prune(now)
        if self.rpm is not None and len(self._requests) >= self.rpm:
            wait = self._requests[0] + self.per - now
            plan.reply = plan.provider.rate_limited(
                plan.req, scope="requests", retry_after=max(wait, 0.001), limit=self.rpm
            )
            return True
        if self.tpm is not None and self._token_total >= self.tpm:
            wait = self._tokens[0][0] + self.per - now
            plan.reply = plan.provider.rate_limited(
                plan.req, scope="tokens", retry_after=max(wait, 0.001), limit=self.tpm
            )
            return True
        self._requests.append(now)
        return False

    def observe(self, plan: Plan, status: int, tokens: int) -> None:
        if tokens > 0:
            self._tokens.append((time.monotonic(), tokens))
            self._token_total += tokens

    def _prune(self, now: float) -> None:
        horizon = now - self.per
        while self._requests and self._requests[0] <= horizon:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] <= horizon:
            self._token_total -= self._tokens.popleft()[1]

    @property
    def usage(self) -> tuple[int, int]:
        """Requests and tokens counted in the current window."""
        self._prune(time.monotonic())
        return len(self._requests), self._token_total
