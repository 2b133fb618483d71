"""Custom checks (`check: python`) used by the experiments: each receives the calls in scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def quota_hits(calls: Sequence[Any]) -> float:
    """How many upstream attempts got OpenAI's quota error: a well-built app stops early."""
    return float(
        sum(
            1
            for call in calls
            for attempt in call.attempts
            if attempt.backend == "openai" and "quota_exhausted" in attempt.faults
        )
    )
