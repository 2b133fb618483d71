"""Small, exact statistics for telling a real change from noise between runs.

Rates use the two-proportion z-test (pooled) and Wilson score intervals; percentiles and
means use a seeded percentile bootstrap; several figures compared at once are corrected with
Holm's step-down method. Everything is in the standard library (`statistics.NormalDist`,
`random.Random`): the formulas are a few lines each, and a seeded bootstrap gives the same
answer on every machine. Sources: Newcombe (1998), "Two-sided confidence intervals for the
single proportion"; Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13 and
15; Holm (1979), "A simple sequentially rejective multiple test procedure".
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

_NORMAL = NormalDist()
BOOTSTRAP_REPS = 2000


def wilson(successes: int, total: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion at level `1 - alpha` ((0, 1) when total is 0)."""
    if total <= 0:
        return 0.0, 1.0
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when it cannot tell)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 1.0  # both all-success or both all-failure: no difference to see
    z = (k2 / n2 - k1 / n1) / math.sqrt(variance)
    return min(1.0, 2 * (1 - _NORMAL.cdf(abs(z))))


def nearest_rank(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of sorted, non-empty `ordered` (as the journal computes it)."""
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def bootstrap_p(
    old: Sequence[Any],
    new: Sequence[Any],
    statistics: Sequence[Callable[[Sequence[Any]], float]],
    rng: random.Random,
    reps: int = BOOTSTRAP_REPS,
) -> list[float]:
    """Two-sided bootstrap p-values that each statistic differs between `old` and `new`.

    Both samples are resampled with replacement `reps` times; one resample serves every
    statistic, each given it sorted (numbers, or tuples ordered by their first item).
    p = twice the smaller share of resampled differences on either side of zero, at most 1.
    Empty samples give 1.0.
    """
    if not old or not new:
        return [1.0] * len(statistics)
    below = [0] * len(statistics)
    above = [0] * len(statistics)
    n_old, n_new = len(old), len(new)
    for _ in range(reps):
        a = sorted(rng.choices(old, k=n_old))
        b = sorted(rng.choices(new, k=n_new))
        for i, stat in enumerate(statistics):
            diff = stat(b) - stat(a)
            if diff <= 0:
                below[i] += 1
            if diff >= 0:
                above[i] += 1
    # (+1)/(reps+1): a bootstrap of `reps` draws cannot show a p-value below 1/(reps+1)
    return [
        min(1.0, (2 * min(lo, hi) + 1) / (reps + 1)) for lo, hi in zip(below, above, strict=True)
    ]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): the family-wise error stays at alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


__all__ = ["bootstrap_p", "holm", "mean", "nearest_rank", "two_proportion_p", "wilson"]
