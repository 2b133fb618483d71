"""`aichaos compare` and `aichaos trend`: real changes are found, noise is not called a change."""

from __future__ import annotations

import functools
import json
import random
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from aichaos.cli import main
from aichaos.experiment import parse_experiment, run_experiment
from aichaos.report.compare import NO_CHANGE, compare_journals, directions, regressed
from aichaos.report.journal import journal_dict
from aichaos.report.significance import holm, two_proportion_p, wilson

TESTS = Path(__file__).parent
SIGNIFICANT = ("better", "worse", "changed")


def synthetic(
    seed: int,
    *,
    calls: int = 30,
    success: float = 0.9,
    median: float = 0.2,
    retries: float = 0.2,
    inject: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A journal of one experiment's three phases, drawn from fixed distributions.

    The same arguments with another seed is pure noise; `inject` overrides the inject
    phase's distribution (a true change when it differs).
    """
    rng = random.Random(seed)
    records = []
    for phase in ("baseline", "inject", "recovery"):
        p = {"success": success, "median": median, "retries": retries}
        if phase == "inject":
            p.update(inject or {})
        for i in range(calls):
            ok = rng.random() < p["success"]
            attempts = 1 + sum(1 for _ in range(2) if rng.random() < p["retries"])
            records.append({
                "id": f"{phase}-{i + 1}", "phase": phase, "ok": ok,
                "duration": p["median"] * rng.lognormvariate(0, 0.3),
                "attempts": [{"backend": "openai"}] * attempts,
            })  # fmt: skip
    return {
        "format": "aichaos-journal",
        "version": 1,
        "experiment": {"title": "synthetic"},
        "status": "passed",
        "seed": seed,
        "phases": [{"name": n, "metrics": {}} for n in ("baseline", "inject", "recovery")],
        "checks": [],
        "calls": records,
    }


def significant(changes: list[Any]) -> list[str]:
    return [c.what for c in changes if c.verdict in SIGNIFICANT]


def test_pure_noise_is_no_significant_change_in_at_least_95_percent_of_pairs() -> None:
    pairs = 40
    flagged = [
        significant(compare_journals(synthetic(2 * i), synthetic(2 * i + 1), reps=200))
        for i in range(pairs)
    ]
    noisy = [f for f in flagged if f]
    assert len(noisy) <= pairs * 0.05, noisy


def test_a_true_change_is_found() -> None:
    old = synthetic(1)
    slower = synthetic(2, inject={"median": 0.4})
    changes = {c.what: c for c in compare_journals(old, slower, reps=400)}
    assert changes["inject: latency p50"].verdict == "worse"
    assert changes["inject: latency p50"].delta.startswith("+")
    assert changes["baseline: latency p50"].verdict == NO_CHANGE
    assert regressed(list(changes.values()))
    faster = {c.what: c for c in compare_journals(slower, old, reps=400)}
    assert faster["inject: latency p50"].verdict == "better"
    assert not regressed(list(faster.values()))
    broken = compare_journals(old, synthetic(3, inject={"success": 0.4}), reps=400)
    assert {c.what: c.verdict for c in broken}["inject: success rate"] == "worse"


def test_a_ten_call_p95_moving_by_noise_is_not_better() -> None:
    # The case: 10 calls whose p95 went from ~55 to ~45 ms by chance.
    old = synthetic(11, calls=10, median=0.05)
    new = synthetic(12, calls=10, median=0.05)
    changes = {c.what: c for c in compare_journals(old, new, reps=400)}
    assert changes["baseline: latency p95"].verdict == NO_CHANGE
    assert old["calls"] != new["calls"]


def test_fewer_attempts_is_not_better_when_success_fell() -> None:
    old = synthetic(5, inject={"success": 1.0, "retries": 0.95})  # ~3 attempts a call
    new = synthetic(6, inject={"success": 0.3, "retries": 0.4})  # the fallback broke
    changes = {c.what: c for c in compare_journals(old, new, reps=400)}
    assert changes["inject: success rate"].verdict == "worse"
    attempts = changes["inject: attempts per call"]
    assert attempts.verdict == "changed" and attempts.note == "the success rate fell"
    assert float(attempts.new) < float(attempts.old)


def test_min_effect_and_alpha_gate_the_verdict() -> None:
    old, new = synthetic(1), synthetic(2, inject={"median": 0.3})  # +50%
    found = {c.what: c.verdict for c in compare_journals(old, new, reps=400)}
    assert found["inject: latency p50"] == "worse"
    big = compare_journals(old, new, reps=400, min_effect=0.9)
    assert {c.what: c.verdict for c in big}["inject: latency p50"] == NO_CHANGE
    strict = compare_journals(old, new, reps=400, alpha=1e-9)
    assert {c.what: c.verdict for c in strict}["inject: latency p50"] == NO_CHANGE


def test_better_follows_the_hypothesis() -> None:
    journal = {"checks": [{"check": "success_rate", "name": "s", "bound": "<= 0.2"}]}
    assert directions(journal)["success_rate"] is False  # a chaos test that wants failures
    assert directions({})["success_rate"] is True
    old, new = synthetic(1, inject={"success": 0.3}), synthetic(2, inject={"success": 0.9})
    new["checks"] = journal["checks"]
    changes = {c.what: c.verdict for c in compare_journals(old, new, reps=400)}
    assert changes["inject: success rate"] == "worse"


def test_statistics_against_known_values() -> None:
    low, high = wilson(8, 10)  # Newcombe (1998), table I: 0.4902 to 0.9433
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert two_proportion_p(50, 100, 50, 100) == 1.0
    assert two_proportion_p(10, 10, 10, 10) == 1.0
    assert two_proportion_p(90, 100, 70, 100) == pytest.approx(0.000407, rel=0.01)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


_EXPERIMENT = """
version: 1
backends: {openai: {provider: openai}}
target: {python: "experiment_targets:ask"}
load: {requests: 20, concurrency: 4}
phases: {baseline: {requests: 6}, recovery: {requests: 2}}
faults: [{backend: openai, kind: outage, probability: PROBABILITY}]
hypothesis: [{check: success_rate, min: 0.5}]
"""


def run_journal(seed: int, probability: float) -> dict[str, Any]:
    text = _EXPERIMENT.replace("PROBABILITY", str(probability))
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    return journal_dict(anyio.run(functools.partial(run_experiment, experiment, seed)))


def test_compare_command_on_real_runs(tmp_path: Path) -> None:
    paths = {}
    for name, seed, probability in (("a", 1, 0.1), ("b", 2, 0.1), ("c", 3, 0.9)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(run_journal(seed, probability)))
    old, broken = (json.loads(paths[n].read_text()) for n in ("a", "c"))
    verdicts = {c.what: c.verdict for c in compare_journals(old, broken)}
    assert verdicts["inject: success rate"] == "worse"
    assert verdicts["baseline: success rate"] == NO_CHANGE
    assert main(["compare", str(paths["a"]), str(paths["c"])]) == 1
    assert main(["compare", str(paths["c"]), str(paths["a"])]) == 0
    # Two runs with other seeds: the seeded outage draws differ, the rate does not (the
    # latency of real runs follows the machine's load, which is a real change, not noise).
    same = {c.what: c.verdict for c in compare_journals(old, json.loads(paths["b"].read_text()))}
    assert same["inject: success rate"] == NO_CHANGE
    with pytest.raises(SystemExit) as usage:
        main(["compare", str(paths["a"]), str(paths["b"]), "--alpha", "2"])  # not a level
    assert usage.value.code == 2


def test_trend_flags_drift_and_exits_1_on_a_regression(tmp_path: Path) -> None:
    stable = [synthetic(20 + i) for i in range(3)]
    drifted = synthetic(30, inject={"success": 0.4})
    paths = []
    for i, journal in enumerate([*stable, drifted]):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(journal))
    from aichaos.report.trend import build_trend, render_trend_html

    trend = build_trend([*stable, drifted], ["r0", "r1", "r2", "r3"], reps=200)
    rows = {s.what: s for s in trend.series}
    assert rows["inject: success rate"].verdicts == ["", "", "", "worse"]
    assert all(not any(s.verdicts[:3]) for s in trend.series)  # the stable runs: no drift
    assert trend.regressed
    assert not build_trend(stable, ["r0", "r1", "r2"], reps=200).regressed
    page = render_trend_html(trend, "Trend: <x>")
    assert page.count("<svg") == len(trend.series) and "&lt;x&gt;" in page
    html_out = tmp_path / "trend.html"
    assert main(["trend", *map(str, paths), "--html", str(html_out)]) == 1
    assert "<polyline" in html_out.read_text()
    assert main(["trend", *map(str, paths[:3])]) == 0
    assert main(["trend", str(tmp_path / "missing.json")]) == 2


def test_trend_charts_have_labelled_axes_and_show_a_flat_100_percent() -> None:
    import re

    from aichaos.report.trend import Series, _chart

    runs = ["r0", "r1", "r2"]
    flat = Series("inject: success rate", "success_rate", ["100%"] * 3, [1.0] * 3, [""] * 3)
    svg = _chart(flat, runs)
    heights = {float(y) for y in re.findall(r"<circle cx='[\d.]+' cy='([\d.]+)'", svg)}
    ticks = re.findall(r"text-anchor='end'>([^<]+)<", svg)
    assert ticks == ["0%", "50%", "100%"]
    top_tick = float(
        re.findall(r"<line x1='\d+' y1='([\d.]+)' x2='\d+' y2='[\d.]+' stroke", svg)[-1]
    )
    assert heights == {top_tick}  # the flat line is drawn at 100%, the top of the axis
    assert all(f">{run}</text>" in svg for run in runs) and ">run</text>" in svg
    latency = Series("inject: latency p95", "latency_p95", ["", "", ""], [0.2, 0.4, 0.3], [""] * 3)
    assert re.findall(r"text-anchor='end'>([^<]+)<", _chart(latency, runs)) == [
        "0 ms",
        "230 ms",
        "460 ms",
    ]
