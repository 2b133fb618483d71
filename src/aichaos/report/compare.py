"""What got better or worse between two runs of an experiment (two journals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aichaos.report.summary import check_result, check_value, duration, share


@dataclass
class Change:
    """One compared figure: what it is, before, after, and whether it got worse."""

    what: str
    old: str
    new: str
    verdict: str  # "better", "worse", "same", "new", "gone"


def compare_journals(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes = [_check_change(o, n) for o, n in _pair(old.get("checks"), new.get("checks"))]
    old_phases = {p["name"]: p.get("metrics") or {} for p in old.get("phases", [])}
    for phase in new.get("phases", []):
        before = old_phases.get(phase["name"])
        after = phase.get("metrics") or {}
        if before is None:
            continue
        name = phase["name"]
        changes.append(
            _figure(
                f"{name}: success rate",
                before.get("success_rate"),
                after.get("success_rate"),
                share,
                higher_is_better=True,
            )
        )
        for pct in ("p50", "p95", "p99"):
            old_v = (before.get("latency") or {}).get(pct)
            new_v = (after.get("latency") or {}).get(pct)
            changes.append(
                _figure(
                    f"{name}: latency {pct}",
                    old_v,
                    new_v,
                    duration,
                    higher_is_better=False,
                    floor=0.005,
                )
            )
        old_a = (before.get("attempts") or {}).get("per_call")
        new_a = (after.get("attempts") or {}).get("per_call")
        changes.append(
            _figure(
                f"{name}: attempts per call",
                old_a,
                new_a,
                lambda v: f"{v:.2f}",
                higher_is_better=False,
            )
        )
    return changes


def same_experiment(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return bool(
        (old.get("experiment") or {}).get("title") == (new.get("experiment") or {}).get("title")
    )


def regressed(changes: list[Change]) -> bool:
    """Whether a check that held before fails now."""
    return any(c.what.startswith("check ") and c.verdict == "worse" for c in changes)


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
    verdict = "same" if was == now else ("better" if now else "worse")
    return Change(what, show(old), show(new), verdict)


def _figure(
    what: str,
    old: float | None,
    new: float | None,
    fmt: Any,
    *,
    higher_is_better: bool,
    floor: float = 1e-9,
) -> Change:
    if old is None or new is None:
        return Change(
            what, "-" if old is None else fmt(old), "-" if new is None else fmt(new), "same"
        )
    tolerance = max(abs(old) * 0.05, floor)  # ignore changes under 5% (or the floor): noise
    if abs(new - old) <= tolerance:
        verdict = "same"
    else:
        verdict = "better" if (new > old) == higher_is_better else "worse"
    return Change(what, fmt(old), fmt(new), verdict)
