"""Stages (issue 11): a timeline of named stages against one running target, checks scoped to a
stage or to a fault's active window, the timeline in every report, and the loader's errors."""

from __future__ import annotations

import functools
import os
import signal
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import anyio
import pytest

from aichaos.experiment import ExperimentError, parse_experiment, run_experiment
from aichaos.experiment.checks.base import CheckContext
from aichaos.experiment.checks.kinds.outcomes import SuccessRate
from aichaos.experiment.observer import Observer
from aichaos.experiment.results import CallRecord, PhaseResult
from aichaos.experiment.run_result import RunResult
from aichaos.experiment.timeline import fault_windows
from aichaos.faults.kinds.http_errors import Outage
from aichaos.report.compare import compare_journals
from aichaos.report.html import render_html
from aichaos.report.journal import journal_dict, read_journal, write_journal
from aichaos.report.junit import junit_xml
from aichaos.report.markdown import render_markdown
from aichaos.report.trend import build_trend
from conftest import Cli

TESTS = Path(__file__).parent

STAGED = """\
version: 1
seed: 5
backends: {openai: {provider: openai}}
target: {python: experiment_targets:ask}
load: {requests: 4, concurrency: 1, prompts: [hi]}
phases: {baseline: {requests: 2}, recovery: {requests: 2}}
stages:
  - name: primary-down
    faults: [{name: down, backend: openai, kind: outage}]
    requests: 3
  - name: storm
    faults: [{name: storm, backend: openai, kind: rate_limit, first: 1}]
    requests: 3
  - name: calm
    requests: 2
hypothesis:
  - {check: error_rate, max: 0, stage: primary-down}
  - {check: success_rate, min: 0.6, stage: storm}
  - {check: success_rate, min: 1.0, stage: calm}
  - {check: success_rate, min: 0.5, during: down}
  - {check: success_rate, min: 0.5, phase: inject}
  - {check: recovery_time, max: 5s}
"""


def run_text(text: str, seed: int | None = None) -> RunResult:
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    return anyio.run(functools.partial(run_experiment, experiment, seed))


@pytest.fixture(scope="module")
def staged() -> RunResult:
    return run_text(STAGED)


def test_stages_run_in_order_each_with_its_own_faults(staged: RunResult) -> None:
    names = [p.name for p in staged.phases]
    assert names == ["baseline", "primary-down", "storm", "calm", "recovery"]
    assert [p.stage for p in staged.phases] == [False, True, True, True, False]
    by_phase: dict[str, list[list[str]]] = {}
    for call in staged.calls:
        by_phase.setdefault(call.phase, []).append([f for a in call.attempts for f in a.faults])
    assert by_phase["primary-down"] == [["down"]] * 3
    assert by_phase["storm"] == [["storm"], [], []]  # first: 1, counted from the stage's start
    assert by_phase["calm"] == [[], []] and by_phase["recovery"] == [[], []]
    assert [c.ok for c in staged.calls if c.phase == "storm"] == [False, True, True]
    # what each fault did, with the stage it ran in
    stats = [(f["label"], f["phase"], f["injected"]) for f in staged.faults]
    assert stats == [("down", "primary-down", 3), ("storm", "storm", 1)]
    # each fault's window: its whole stage (no `window:`), and the faults end with the last
    down = next(p for p in staged.phases if p.name == "primary-down")
    (window,) = down.fault_windows
    assert (window.name, window.kind, window.start, window.end) == (
        "down",
        "outage",
        down.started,
        down.ended,
    )
    storm = next(p for p in staged.phases if p.name == "storm")
    assert staged.fault_end == storm.ended


def test_checks_are_scoped_to_a_stage_a_fault_window_or_all_stages(staged: RunResult) -> None:
    verdicts = {c.name: (c.phase, c.verdict, c.value) for c in staged.checks}
    assert verdicts == {
        "error_rate <= 0 (primary-down)": ("primary-down", "FAIL", 1.0),
        "success_rate >= 0.6 (storm)": ("storm", "PASS", pytest.approx(2 / 3)),
        "success_rate >= 1 (calm)": ("calm", "PASS", 1.0),
        "success_rate >= 0.5 (during down)": ("during down", "FAIL", 0.0),
        "success_rate >= 0.5 (inject)": ("inject", "PASS", pytest.approx(4 / 8)),
        "recovery_time <= 5.00s": ("all", "PASS", staged.checks[-1].value),
    }
    assert staged.status == "failed" and staged.exit_code == 1
    assert "0 of 3 calls succeeded" in staged.checks[3].detail


def test_during_takes_the_calls_that_overlap_the_faults_active_window() -> None:
    def call(n: int, start: float, end: float, ok: bool) -> CallRecord:
        record = CallRecord(f"s-{n}", "s", n, "hi", started=start, ended=end, ok=ok)
        record.error = None if ok else "boom"
        return record

    calls = [
        call(1, 0.0, 0.9, True),  # ended before the window opened
        call(2, 0.5, 1.2, False),  # overlaps its opening
        call(3, 1.5, 1.8, False),  # inside
        call(4, 1.9, 2.5, True),  # overlaps its closing
        call(5, 2.0, 2.2, True),  # started as it closed
    ]
    ctx = CheckContext(calls, windows={"down": [(1.0, 2.0)]})
    result = SuccessRate(check="success_rate", min=0.5, during="down").evaluate(ctx)
    assert result.value == pytest.approx(1 / 3)
    assert result.detail.startswith("1 of 3 calls succeeded")
    never = SuccessRate(check="success_rate", min=0.5, during="other").evaluate(ctx)
    # never active: the records cannot tell how the app does during it
    assert never.verdict == "INCONCLUSIVE" and never.value is None
    assert "fault 'other' was never active" in never.detail


def test_a_stage_the_run_never_reached_is_inconclusive_not_failed() -> None:
    ran = PhaseResult("baseline", started=0.0, ended=1.0)
    record = CallRecord("b-1", "baseline", 1, "hi", started=0.1, ended=0.2, ok=True)
    ctx = CheckContext([record], phases={"baseline": ran}, stages=frozenset({"storm"}))
    unreached = SuccessRate(check="success_rate", min=0.5, stage="storm").evaluate(ctx)
    assert unreached.verdict == "INCONCLUSIVE" and unreached.value is None
    assert "stage 'storm' did not run" in unreached.detail
    reached = SuccessRate(check="success_rate", min=0.5, phase="baseline").evaluate(ctx)
    assert reached.verdict == "PASS"


def test_a_window_opens_late_and_closes_at_its_duration_or_when_faults_go_off() -> None:
    late = Outage(kind="outage", name="late", window={"start": "1s", "duration": "2s"})
    never = Outage(kind="outage", window={"start": "9s"})
    whole = Outage(kind="outage")
    windows, last = fault_windows([late, never, whole], started=10.0, ended=12.5)
    assert [(w.label, w.start, w.end) for w in windows] == [
        ("late", 11.0, 12.5),  # cut when the faults went off (a stage stopped early)
        ("outage", 10.0, 12.5),
    ]
    assert last == 12.5
    _, last = fault_windows([late], started=10.0, ended=20.0)
    assert last == 13.0


def test_every_report_shows_the_timeline_and_per_stage_figures(staged: RunResult) -> None:
    journal = journal_dict(staged)
    phases = {p["name"]: p for p in journal["phases"]}
    assert phases["storm"]["stage"] and not phases["baseline"]["stage"]
    assert [w["name"] for w in phases["primary-down"]["faults"]] == ["down"]
    assert phases["calm"]["faults"] == [] and phases["storm"]["metrics"]["requests"] == 3
    markdown = render_markdown(journal)
    assert "### Timeline" in markdown
    assert "| stage | primary-down |" in markdown and "down: outage on openai" in markdown
    assert "| storm | 3 | 66.7% |" in markdown  # the stage's own figures
    html = render_html(journal)
    assert "<h2>Timeline</h2>" in html and "storm: rate_limit" in html
    suite = ET.fromstring(junit_xml(staged))[0]
    timeline = suite.find("system-out")
    assert timeline is not None and timeline.text is not None
    assert "stage primary-down:" in timeline.text and "phase recovery:" in timeline.text
    names = [case.get("name") for case in suite.findall("testcase")]
    assert "success_rate >= 0.5 (during down)" in names


def test_compare_and_trend_read_stage_journals(staged: RunResult) -> None:
    journal = journal_dict(staged)
    changes = compare_journals(journal, journal, reps=50)
    figures = {c.what for c in changes}
    assert "storm: success rate" in figures and "calm: success rate" in figures
    assert not any(c.verdict == "worse" for c in changes)
    trend = build_trend([journal, journal], ["a", "b"], reps=50)
    assert trend is not None


def test_a_stop_when_condition_scoped_to_a_stage_stops_the_run_there(tmp_path: Path) -> None:
    text = STAGED.replace("    requests: 3\n  - name: storm", "    duration: 30s\n  - name: storm")
    text = text.split("hypothesis:")[0] + textwrap.dedent("""\
        hypothesis:
          - {check: success_rate, min: 1.0, stage: calm}
        stop_when:
          - {check: success_rate, min: 0.5, stage: primary-down, min_calls: 2}
        """)
    result = run_text(text)
    assert result.status == "aborted" and result.exit_code == 3
    assert "stop_when success_rate >= 0.5 (primary-down) fired" in (result.reason or "")
    assert [p.name for p in result.phases] == ["baseline", "primary-down"]
    (down,) = [p for p in result.phases if p.name == "primary-down"]
    assert not down.completed
    # the faults went off when it fired: the window ends there, not at the stage's 30 s
    (window,) = down.fault_windows
    assert window.end <= (down.ended or 0.0) and window.end - window.start < 30
    assert result.faults[0]["phase"] == "primary-down"


MISTAKES = """\
version: 1
backends: {openai: {provider: openai}}
target: {python: experiment_targets:echo}
load: {requests: 2, timeout: soon}
phases: {inject: {requests: 3}}
faults: [{backend: openai, kind: outage}]
stages:
  - name: outage
    faults: [{name: down, backend: openai, kind: outage}]
  - name: outage
    faults: [{name: down, backend: opneai, kind: rate_limit}]
  - name: recovery
hypothesis:
  - {check: success_rate, min: 1, stage: outgae}
  - {check: success_rate, min: 1, during: dwon}
  - {check: success_rate, min: 1, stage: outage, phase: inject}
  - {check: success_rate, min: 1, phase: outage}
stop_when:
  - {check: success_rate, min: 1, during: down}
"""


def test_every_stage_mistake_is_reported_at_once_with_its_place() -> None:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(MISTAKES, file="day.yaml", base_dir=TESTS)
    found = {(p.format().split(": ")[1], p.line) for p in info.value.problems}
    text = info.value.format()
    for path, line in [
        ("load.timeout", 4),  # a mistake of another kind, in the same pass
        ("phases.inject", 5),
        ("faults", 6),
        ("stages[1].name", 10),
        ("stages[1].faults[0].name", 11),
        ("stages[1].faults[0].backend", 11),
        ("stages[2].name", 12),
        ("hypothesis[0].stage", 14),
        ("hypothesis[1].during", 15),
        ("hypothesis[2]", 16),
        ("hypothesis[3].phase", 17),  # in place of the schema's "not a valid choice"
        ("stop_when[0].during", 19),
    ]:
        assert (path, line) in found, f"{path} (line {line}) not in:\n{text}"
    assert "stage name 'outage' is already used at stages[0].name" in text
    assert "fault name 'down' is already used at stages[0].faults[0].name" in text
    assert "no stage is named 'outgae'" in text and "did you mean 'outage'" in text
    assert "no fault is named 'dwon'" in text and "did you mean 'down'" in text
    assert "'recovery' names a phase" in text
    assert "'outage' is a stage, not a phase; expected `stage: outage`" in text
    assert "'outage' is not a valid choice" not in text
    assert "give one of `phase`, `stage` or `during`" in text
    assert "the stages take the inject phase's place" in text
    assert "with `stages`, faults belong to a stage" in text
    assert "Traceback" not in text


def test_stage_and_during_need_something_to_name() -> None:
    plain = """\
        version: 1
        target: {python: experiment_targets:echo}
        load: {requests: 2}
        faults: [{backend: openai, kind: outage}]
        hypothesis:
          - {check: success_rate, min: 1, stage: outage}
          - {check: success_rate, min: 1, during: outage}
        """
    with pytest.raises(ExperimentError) as info:
        parse_experiment(textwrap.dedent(plain), file="x.yaml", base_dir=TESTS)
    text = info.value.format()
    assert "hypothesis[0].stage: no stage is named 'outage': this experiment has no" in text
    assert "hypothesis[1].during: no fault is named 'outage'; expected the `name:` of" in text


def test_validate_reports_stage_mistakes_and_exits_2(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "day.yaml"
    bad.write_text(MISTAKES)
    done = cli("validate", str(bad))
    assert done.returncode == 2
    assert f"{bad}:14:" in done.stderr and "hypothesis[0].stage" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    good = tmp_path / "good.yaml"
    good.write_text(STAGED)
    done = cli("validate", str(good), cwd=TESTS)
    assert done.returncode == 0, done.stderr
    assert "3 stages, 2 faults, 6 checks" in done.stdout
    dry = cli("run", str(good), "--dry-run", cwd=TESTS)
    assert dry.returncode == 0, dry.stderr
    assert "stage primary-down: 3 requests" in dry.stdout
    assert "    down: outage on openai" in dry.stdout


class _InterruptIn(Observer):
    """Sends the process SIGINT once the given stage has had a call answered."""

    def __init__(self, stage: str) -> None:
        self.stage, self.sent = stage, False

    def call_finished(self, call: CallRecord) -> None:
        if call.phase == self.stage and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_in_a_stage_removes_its_faults_runs_no_further_stage_and_keeps_outputs(
    tmp_path: Path,
) -> None:
    text = STAGED.replace("    requests: 3\n  - name: calm", "    duration: 30s\n  - name: calm")
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    observer = _InterruptIn("storm")
    run = functools.partial(run_experiment, experiment, 5, observer, handle_signals=True)
    result = anyio.run(run)
    assert result.status == "interrupted" and "SIGINT" in (result.reason or "")
    assert [p.name for p in result.phases] == ["baseline", "primary-down", "storm"]
    storm = result.phases[-1]
    assert not storm.completed
    (window,) = storm.fault_windows  # cut when the run stopped, not at 30 s
    assert window.name == "storm" and window.end - window.start < 30
    assert [f["phase"] for f in result.faults] == ["primary-down", "storm"]
    assert any(m["message"] == "faults off (storm)" for m in result.events)
    journal = tmp_path / "day.json"
    write_journal(result, journal)
    assert "storm (stopped early)" in render_markdown(read_journal(journal))


def test_the_proxy_refuses_faults_that_belong_to_stages(tmp_path: Path, cli: Cli) -> None:
    day = tmp_path / "day.yaml"
    day.write_text(
        textwrap.dedent("""\
            version: 1
            backends: {openai: {provider: openai}}
            target: {http: {url: "http://127.0.0.1:9/chat"}}
            load: {requests: 2}
            stages: [{name: down, faults: [{backend: openai, kind: outage}]}]
            """)
    )
    done = cli("proxy", "--experiment", str(day))
    assert done.returncode == 2
    assert "the faults of its `stages` follow the timeline of `aichaos run`" in done.stderr
