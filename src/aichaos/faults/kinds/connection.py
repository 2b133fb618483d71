"""Faults of the connection itself: delay, hang, reset, refusal."""

from __future__ import annotations

import math
import random
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.units import Duration
from aichaos.wire.exchange import Abort, Hang

_Z99 = 2.3263478740408408  # the standard normal's 99th percentile


class Latency(Fault):
    """Delay before the response: fixed, or drawn from a distribution (seeded).

    `delay`, or `distribution` uniform (`min`, `max`), normal (`mean`, `stddev`) or lognormal
    (`median`, `p99`: a realistic long tail). Several latency faults on one request add up. A
    delay longer than the client's read timeout ends as that timeout (`APITimeoutError` after
    the SDK's retries).
    """

    summary: ClassVar[str] = "delay before the response (fixed, uniform, normal or lognormal)"
    kind: Literal["latency"] = "latency"
    delay: Duration | None = Field(None, description="Fixed delay.")
    distribution: Literal["fixed", "uniform", "normal", "lognormal"] = Field(
        "fixed", description="fixed (`delay`), uniform, normal or lognormal."
    )
    min: Duration | None = Field(None, description="uniform: lower bound.")
    max: Duration | None = Field(None, description="uniform: upper bound.")
    mean: Duration | None = Field(None, description="normal: mean.")
    stddev: Duration | None = Field(None, description="normal: standard deviation.")
    median: Duration | None = Field(None, description="lognormal: median.")
    p99: Duration | None = Field(None, description="lognormal: 99th percentile.")

    @model_validator(mode="after")
    def _parameters_for_distribution(self) -> Latency:
        needed = {
            "fixed": ("delay",),
            "uniform": ("min", "max"),
            "normal": ("mean", "stddev"),
            "lognormal": ("median", "p99"),
        }[self.distribution]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"distribution {self.distribution!r} needs {', '.join(missing)}")
        if self.distribution == "uniform" and self.max < self.min:  # type: ignore[operator]
            raise ValueError("max must be at least min")
        if self.distribution == "lognormal" and self.p99 < self.median:  # type: ignore[operator]
            raise ValueError("p99 must be at least the median")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            assert self.min is not None and self.max is not None
            return rng.uniform(self.min, self.max)
        if self.distribution == "normal":
            assert self.mean is not None and self.stddev is not None
            return max(0.0, rng.gauss(self.mean, self.stddev))
        if self.distribution == "lognormal":
            assert self.median is not None and self.p99 is not None
            mu = math.log(max(self.median, 1e-9))
            sigma = (math.log(max(self.p99, 1e-9)) - mu) / _Z99
            return rng.lognormvariate(mu, sigma)
        assert self.delay is not None
        return self.delay

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.delay += self.sample(rng)
        return True


class Timeout(Fault):
    """The request hangs with no response until the client gives up.

    No status, no bytes: the client's read timeout fires, the SDKs retry twice (each attempt
    waits the full timeout) and raise `APITimeoutError`. With `hang`, the server gives up first
    and closes the connection (`APIConnectionError` after retries). The proxy holds the TCP
    connection open for real.
    """

    summary: ClassVar[str] = "the request hangs (no response) until the client gives up"
    terminal: ClassVar[bool] = True
    kind: Literal["timeout"] = "timeout"
    hang: Duration | None = Field(
        None, description="Give up waiting after this long (default: until the client does)."
    )

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.failure = Hang(self.hang)
        return True


class ConnectionReset(Fault):
    """The connection drops before the response, or `after_bytes` into its body.

    Before the response: "Server disconnected without sending a response", a transport error
    the SDKs retry twice before raising `APIConnectionError`. With `after_bytes` the body is
    cut that far in; for a stream the SDK has already returned, so nothing is retried: openai
    (>= 3.22) raises `APIConnectionError` while iterating, anthropic the raw
    `httpx2.RemoteProtocolError`. The proxy closes the client's TCP connection.
    """

    summary: ClassVar[str] = "the connection drops before (or after_bytes into) the response"
    kind: Literal["connection_reset"] = "connection_reset"
    after_bytes: int | None = Field(None, ge=0, description="Drop this far into the body.")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        if self.after_bytes is None:
            if plan.terminal:
                return False
            plan.failure = Abort("reset", "Server disconnected without sending a response.")
        else:
            plan.abort_after_bytes = self.after_bytes
        return True


class ConnectionRefused(Fault):
    """The backend cannot be reached at all.

    "Connection refused": retried twice, then `APIConnectionError`. The proxy closes the
    client's connection before any response.
    """

    summary: ClassVar[str] = "the backend cannot be reached at all"
    terminal: ClassVar[bool] = True
    kind: Literal["connection_refused"] = "connection_refused"

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.failure = Abort("refused", "[Errno 111] Connection refused")
        return True
