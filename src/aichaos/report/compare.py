"""What changed between runs of an experiment, and whether the change is more than noise.

Per phase, from the journals' calls: the success rate (two-proportion z-test, Wilson
intervals shown), the latency p50/p95/p99 and the attempts per call (seeded bootstrap over
calls). All figures of one comparison are corrected together (Holm), so a comparison of two
runs of the same experiment reports no change at least `1 - alpha` of the time. A figure is
better or worse only when its change is significant *and* at least `min_effect` (absolute
for rates, relative for latency and attempts); which way is better follows the hypothesis,
and in a phase whose success rate changed significantly, latency and attempts are only
"changed" (fewer retries because the fallback broke is not an improvement, and calls that
now succeed are not a slowdown). A percentile is tested only when each run has at least
`TAIL_CALLS` calls above it (p95 needs 100 calls): with fewer, the bootstrap cannot see it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aichaos.report.significance import (
    BOOTSTRAP_REPS,
    bootstrap_p,
    holm,
    mean,
    nearest_rank,
    two_proportion_p,
    wilson,
)
from aichaos.report.summary import check_result, check_value, duration, share

NO_CHANGE = "no significant change"
PERCENTILES = (50, 95, 99)
TAIL_CALLS = 5  # a percentile is tested only with this many calls above it on each side


@dataclass
class PhaseSample:
    """The calls of one phase, as the statistics need them."""

    ok: int = 0
    durations: list[float] = field(default_factory=list)  # of completed calls, seconds
    attempts: list[float] = field(default_factory=list)  # per completed call

    @property
    def total(self) -> int:
        return len(self.durations)

    def extend(self, other: PhaseSample) -> None:
        self.ok += other.ok
        self.durations += other.durations
        self.attempts += other.attempts


@dataclass
class Change:
    """One compared figure: before, after, the change, its adjusted p-value and verdict.

    `verdict` is "better", "worse", "changed" (significant, but not an improvement given the
    hypothesis), NO_CHANGE, "new" or "gone"; for checks also "now holds" / "now fails" / "same".
    """

    what: str
    old: str
    new: str
    verdict: str
    delta: str = ""
    p_value: float | None = None
    note: str = ""
    phase: str = ""
    figure: str = ""  # success_rate, latency_p95, attempts_per_call, or "" for a check


@dataclass
class _Figure:
    phase: str
    figure: str
    old: float | None
    new: float | None
    p: float | None  # None: too few calls for this figure
    effect: float  # absolute for rates, relative for the others
    show: Callable[[float | None], str]
    higher_is_better: bool
    relative: bool


def phase_samples(journal: dict[str, Any]) -> dict[str, PhaseSample]:
    """Each phase's completed calls from a journal (phases in the journal's order)."""
    samples = {str(p["name"]): PhaseSample() for p in journal.get("phases", [])}
    for call in journal.get("calls", []):
        if call.get("duration") is None:
            continue
        sample = samples.setdefault(str(call.get("phase")), PhaseSample())
        sample.ok += 1 if call.get("ok") else 0
        sample.durations.append(float(call["duration"]))
        sample.attempts.append(float(len(call.get("attempts") or [])))
    return samples


def directions(journal: dict[str, Any]) -> dict[str, bool]:
    """Which way is better for each figure (True: higher), as the hypothesis bounds it."""
    found = {"success_rate": True, "latency": False, "attempts_per_call": False}
    figure_of = {"success_rate": "success_rate", "latency": "latency", "attempts": "attempts"}
    for check in journal.get("checks", []):
        figure = figure_of.get(str(check.get("check")))
        bound = str(check.get("bound", ""))
        if figure is None or (">=" in bound) == ("<=" in bound):
            continue
        key = "attempts_per_call" if figure == "attempts" else figure
        found[key] = ">=" in bound
    return found


def compare_samples(
    old: dict[str, PhaseSample],
    new: dict[str, PhaseSample],
    *,
    better: dict[str, bool] | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    seed: int = 0,
    reps: int = BOOTSTRAP_REPS,
) -> list[Change]:
    """Figures of the phases both sides have, each judged for significance (Holm-corrected)."""
    better = better or directions({})
    figures: list[_Figure] = []
    for phase, after in new.items():
        before = old.get(phase)
        if before is None or not before.total or not after.total:
            continue
        figures += _phase_figures(phase, before, after, better, seed, reps)
    testable = [f for f in figures if f.p is not None]
    raw = [f.p for f in testable if f.p is not None]
    adjusted = dict(zip(map(id, testable), holm(raw), strict=True))
    judged = []
    for f in figures:
        p = adjusted.get(id(f))
        judged.append((f, p, p is not None and p < alpha and abs(f.effect) >= min_effect))
    moved = {
        f.phase: "fell" if f.effect < 0 else "rose"
        for f, _, significant in judged
        if significant and f.figure == "success_rate"
    }
    changes = []
    for f, p, significant in judged:
        verdict, note = NO_CHANGE, "" if p is not None else "too few calls to tell"
        if significant:
            good = (f.effect > 0) == f.higher_is_better
            verdict = "better" if good else "worse"
            if f.figure != "success_rate" and f.phase in moved:
                # calls that fail fast (or now succeed slowly) are not faster (slower) calls
                verdict, note = "changed", f"the success rate {moved[f.phase]}"
        changes.append(
            Change(
                what=f"{f.phase}: {f.figure.replace('_', ' ')}",
                old=f.show(f.old),
                new=f.show(f.new),
                verdict=verdict,
                delta=_delta(f),
                p_value=p,
                note=note,
                phase=f.phase,
                figure=f.figure,
            )
        )
    return changes


def _phase_figures(
    phase: str,
    before: PhaseSample,
    after: PhaseSample,
    better: dict[str, bool],
    seed: int,
    reps: int,
) -> list[_Figure]:
    rate_old, rate_new = before.ok / before.total, after.ok / after.total

    figures = [
        _Figure(
            phase,
            "success_rate",
            rate_old,
            rate_new,
            two_proportion_p(before.ok, before.total, after.ok, after.total),
            rate_new - rate_old,
            _rate_shower(before, after),
            better["success_rate"],
            relative=False,
        )
    ]
    # One bootstrap over calls serves every percentile and the attempts per call.
    old_calls = list(zip(before.durations, before.attempts, strict=True))
    new_calls = list(zip(after.durations, after.attempts, strict=True))
    stats: list[Callable[[Sequence[Any]], float]] = [
        _percentile_of_calls(pct) for pct in PERCENTILES
    ]
    stats.append(lambda calls: mean([a for _, a in calls]))
    rng = random.Random(f"{seed}:{phase}")
    p_values = bootstrap_p(old_calls, new_calls, stats, rng, reps)
    ordered_old, ordered_new = sorted(before.durations), sorted(after.durations)
    for pct, p in zip(PERCENTILES, p_values[:-1], strict=True):
        o, n = nearest_rank(ordered_old, pct), nearest_rank(ordered_new, pct)
        if min(before.total, after.total) * (100 - pct) / 100 < TAIL_CALLS:
            p = None  # type: ignore[assignment]  # the bootstrap cannot see a tail this thin
        figures.append(
            _Figure(
                phase, f"latency_p{pct}", o, n, p, _relative(o, n), _show_duration,
                better["latency"], relative=True,
            )
        )  # fmt: skip
    o, n = mean(before.attempts), mean(after.attempts)
    figures.append(
        _Figure(
            phase, "attempts_per_call", o, n, p_values[-1], _relative(o, n), _show_count,
            better["attempts_per_call"], relative=True,
        )
    )  # fmt: skip
    return figures


def _percentile_of_calls(pct: float) -> Callable[[Sequence[Any]], float]:
    def stat(calls: Sequence[Any]) -> float:  # calls come sorted by duration
        return nearest_rank([d for d, _ in calls], pct)

    return stat


def _rate_shower(before: PhaseSample, after: PhaseSample) -> Callable[[float | None], str]:
    intervals = {
        before.ok / before.total: wilson(before.ok, before.total),
        after.ok / after.total: wilson(after.ok, after.total),
    }

    def show(value: float | None) -> str:
        if value is None:
            return "-"
        low, high = intervals.get(value, (value, value))
        return f"{share(value)} [{share(low)}, {share(high)}]"

    return show


def _relative(old: float, new: float) -> float:
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return (new - old) / old


def _show_duration(value: float | None) -> str:
    return duration(value)


def _show_count(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _delta(f: _Figure) -> str:
    if f.relative:
        return "+inf" if math.isinf(f.effect) else f"{f.effect * 100:+.0f}%"
    return f"{f.effect * 100:+.1f} pts"


def compare_journals(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    seed: int = 0,
    reps: int = BOOTSTRAP_REPS,
) -> list[Change]:
    """Check verdicts side by side, then every phase figure judged for significance."""
    changes = [_check_change(o, n) for o, n in _pair(old.get("checks"), new.get("checks"))]
    return changes + compare_samples(
        phase_samples(old),
        phase_samples(new),
        better=directions(new),
        alpha=alpha,
        min_effect=min_effect,
        seed=seed,
        reps=reps,
    )


def same_experiment(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return bool(
        (old.get("experiment") or {}).get("title") == (new.get("experiment") or {}).get("title")
    )


def regressed(changes: list[Change]) -> bool:
    """Whether a figure got significantly worse (a check crossing its bound alone is not
    enough: noise crosses bounds too)."""
    return any(c.verdict == "worse" for c in changes)


def _pair(
    old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None
) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    old_by = {c["name"]: c for c in old or []}
    new_by = {c["name"]: c for c in new or []}
    names = list(old_by) + [n for n in new_by if n not in old_by]
    return [(old_by.get(n), new_by.get(n)) for n in names]


def _check_change(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change:
    current = new or old
    assert current is not None
    what = f"check {current['name']}"

    def show(c: dict[str, Any] | None) -> str:
        if c is None:
            return "-"
        return f"{check_result(c)} {check_value(c['check'], c.get('value'))}"

    if old is None:
        return Change(what, "-", show(new), "new")
    if new is None:
        return Change(what, show(old), "-", "gone")
    was, now = bool(old.get("passed")), bool(new.get("passed"))
    verdict = "same" if was == now else ("now holds" if now else "now fails")
    return Change(what, show(old), show(new), verdict)
