"""What a person sees during and after a run.

On a terminal: a live view per phase (progress, requests, successes, errors by
class, faults injected by kind, latency percentiles, which backend served).
Otherwise, or with `--quiet`: plain lines, one per event. At the end, a verdict
table of every check. Everything printed goes through the `Redactor`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from typing import IO, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from aichaos.experiment.metrics import percentile
from aichaos.experiment.model import Experiment
from aichaos.experiment.observer import Observer
from aichaos.experiment.phases import PhasePlan
from aichaos.experiment.results import CallRecord, PhaseResult
from aichaos.experiment.run_result import RunResult
from aichaos.records import Attempt
from aichaos.report.journal import phase_dict
from aichaos.report.redact import Redactor
from aichaos.report.summary import calls_figure, check_value, phase_rows, share, timeline_rows

_STYLE = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "bold yellow"}
_VERDICT = {
    "passed": ("green", "PASSED", "every hypothesis held"),
    "failed": ("red", "FAILED", "a hypothesis did not hold"),
    "aborted": ("yellow", "ABORTED", "a stop_when condition fired"),
    "interrupted": ("yellow", "INTERRUPTED", "the run was interrupted"),
}


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


class PhaseStats:
    """Running figures of one phase (cheap to update on every call)."""

    def __init__(self, plan: PhasePlan) -> None:
        self.plan = plan
        self.started = time.monotonic()
        self.done = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.cancelled = 0
        self.finished = False

    def settle(self, metrics: dict[str, Any]) -> None:
        """Take the phase's final figures (after attribution), as the journal has them."""
        self.done, self.ok = metrics.get("requests", self.done), metrics.get("ok", self.ok)
        self.cancelled = metrics.get("cancelled", 0)
        self.errors = Counter(metrics.get("errors") or {})
        self.faults = Counter(metrics.get("faults") or {})
        self.served = Counter(metrics.get("served_by") or {})
        self.finished = True

    def add(self, call: CallRecord) -> None:
        self.done += 1
        if call.ok:
            self.ok += 1
        else:
            self.errors[call.error or "error"] += 1
        if call.served_by:
            self.served[call.served_by] += 1
        if call.duration is not None:
            self.latencies.append(call.duration)

    def progress(self) -> tuple[float, float]:
        if self.finished:
            return 1.0, 1.0
        if self.plan.requests is not None:
            return self.done, self.plan.requests
        return min(
            time.monotonic() - self.started, self.plan.duration or 1
        ), self.plan.duration or 1

    def line(self) -> str:
        rate = share(self.ok / self.done) if self.done else "-"
        lat = self.latencies
        parts = [
            # done: the judged calls once settled (all calls before), cancelled apart
            f"{self.plan.name}: {calls_figure(self.done + self.cancelled, self.cancelled)} calls,"
            f" {self.ok} ok ({rate})",
            f"p50 {_ms(percentile(lat, 50))} p95 {_ms(percentile(lat, 95))}"
            f" p99 {_ms(percentile(lat, 99))}",
        ]
        if self.errors:
            parts.append("errors: " + _counts(self.errors))
        if self.faults:
            parts.append("faults: " + _counts(self.faults))
        if self.served:
            parts.append("served by: " + _counts(self.served))
        return "; ".join(parts)


def _counts(counter: Counter[str], limit: int = 4) -> str:
    return ", ".join(f"{name} {n}" for name, n in counter.most_common(limit))


class _Base(Observer):
    def __init__(self, console: Console) -> None:
        self.console = console
        self.redactor = Redactor.for_run()
        self.stats: list[PhaseStats] = []
        self.lock = threading.Lock()  # attempts finish in worker threads

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        spec = experiment.model_dump(mode="json", by_alias=True)
        self.redactor = Redactor.for_run(spec)

    def heading(self, experiment: Experiment, seed: int) -> str:
        where = f" ({experiment.source})" if experiment.source else ""
        return f"{experiment.name}{where}  seed {seed}"

    def phase_started(self, plan: PhasePlan) -> None:
        with self.lock:
            self.stats.append(PhaseStats(plan))

    def call_finished(self, call: CallRecord) -> None:
        if self.stats:
            with self.lock:  # the live view reads these counters from its own thread
                self.stats[-1].add(call)

    def attempt_finished(self, attempt: Attempt) -> None:
        if attempt.faults and self.stats:
            with self.lock:
                self.stats[-1].faults.update(attempt.faults)

    def phase_finished(self, phase: PhaseResult) -> None:
        if self.stats:
            with self.lock:
                self.stats[-1].settle(phase.metrics)

    def say(self, markup: str) -> None:
        self.console.print(self.redactor.text(markup), highlight=False, soft_wrap=True)

    def run_finished(self, result: RunResult) -> None:
        print_verdict(result, self.console, self.redactor)


class PlainConsole(_Base):
    """One line per event; with `quiet`, only phase summaries, stops and the verdict."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        super().__init__(console)
        self.quiet = quiet
        self.last_progress = time.monotonic()

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        super().run_started(experiment, seed, plans)
        self.say(f"[bold]{escape(self.heading(experiment, seed))}[/]")

    def phase_started(self, plan: PhasePlan) -> None:
        super().phase_started(plan)
        if not self.quiet:
            self.say(f"phase {escape(plan.describe())}")

    def call_finished(self, call: CallRecord) -> None:
        super().call_finished(call)
        now = time.monotonic()
        if not self.quiet and now - self.last_progress >= 1.0 and self.stats:
            self.last_progress = now
            self.say("  " + escape(self.stats[-1].line()))

    def phase_finished(self, phase: PhaseResult) -> None:
        super().phase_finished(phase)
        if self.stats:
            state = "" if phase.completed else " (stopped early)"
            self.say(f"done {escape(self.stats[-1].line())}{state}")

    def event(self, message: str) -> None:
        important = message.startswith(("stop_when", "interrupted"))
        if important or not (self.quiet or message.startswith("phase ")):
            self.say(f"  {escape(message)}")


class LiveConsole(_Base):
    """A live view on a terminal, redrawn a few times a second."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.events: deque[str] = deque(maxlen=6)
        self.title = ""
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self._render)

    def run_started(self, experiment: Experiment, seed: int, plans: list[PhasePlan]) -> None:
        super().run_started(experiment, seed, plans)
        self.title = self.redactor.text(self.heading(experiment, seed))
        self.live.start()

    def event(self, message: str) -> None:
        if not message.startswith("phase "):
            self.events.append(f"{time.strftime('%H:%M:%S')} {self.redactor.text(message)}")

    def run_finished(self, result: RunResult) -> None:
        self.close()
        super().run_finished(result)

    def close(self) -> None:
        if self.live.is_started:
            self.live.refresh()
            self.live.stop()

    def _render(self) -> RenderableType:
        table = Table(box=box.SIMPLE_HEAD, title=escape(self.title), title_justify="left")
        for column in ("phase", "progress", "calls", "ok", "p50", "p95", "p99"):
            table.add_column(column, justify="left" if column in ("phase", "progress") else "right")
        table.add_column("errors")
        table.add_column("faults injected")
        table.add_column("served by")
        with self.lock:
            rows = [self._row(phase) for phase in self.stats]
        for row in rows:
            table.add_row(*row)
        lines = [Text(e, style="dim") for e in self.events]
        return Group(table, *lines)

    @staticmethod
    def _row(phase: PhaseStats) -> list[RenderableType]:
        done, total = phase.progress()
        lat = list(phase.latencies)
        ok = share(phase.ok / phase.done) if phase.done else "-"
        return [
            phase.plan.name,
            ProgressBar(total=total, completed=done, width=18),
            str(phase.done),
            Text(ok, style="green" if phase.ok == phase.done else "red"),
            _ms(percentile(lat, 50)),
            _ms(percentile(lat, 95)),
            _ms(percentile(lat, 99)),
            escape(_counts(phase.errors, 3)),
            escape(_counts(phase.faults, 3)),
            escape(_counts(phase.served, 3)),
        ]


def print_verdict(result: RunResult, console: Console, redactor: Redactor | None = None) -> None:
    """The verdict table of every check, and the run's status line."""
    redactor = redactor or Redactor.for_run()
    plain = not console.is_terminal
    if any(p.stage for p in result.phases):
        print_timeline(result, console, redactor)
    table = Table(box=box.ASCII if plain else box.ROUNDED, title="Hypothesis", title_justify="left")
    for column in ("check", "phase", "measured", "bound", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in result.checks:
        value = check_value(check.check, check.value)
        verdict = Text(check.verdict, style=_STYLE[check.verdict])
        table.add_row(
            check.check,
            check.phase,
            value,
            escape(redactor.text(check.bound)),
            verdict,
            escape(redactor.text(check.detail)),
        )
    if result.checks:
        console.print(table)
    else:
        console.print("no hypothesis: nothing was judged")
    style, word, meaning = _VERDICT[result.status]
    failed = sum(1 for c in result.checks if c.verdict == "FAIL")
    unsure = sum(1 for c in result.checks if c.verdict == "INCONCLUSIVE")
    if result.status == "failed":
        meaning = f"{failed} of {len(result.checks)} checks failed"
        if unsure:
            meaning += f", {unsure} inconclusive"
    if result.reason:
        meaning = result.reason
    console.print(
        f"[bold {style}]{word}[/] {escape(redactor.text(meaning))}"
        f"  (exit {result.exit_code}, {result.duration:.1f}s,"
        f" {calls_figure(len(result.calls), result.cancelled)} calls)",
        highlight=False,
    )


def print_timeline(result: RunResult, console: Console, redactor: Redactor) -> None:
    """The timeline of a run with stages: each phase and stage, when it ran, its figures and
    when each of its faults was active."""
    box_style = box.ASCII if not console.is_terminal else box.ROUNDED
    table = Table(box=box_style, title="Timeline", title_justify="left")
    for column in ("phase", "from", "to", "calls", "ok", "p95", "faults (when active)"):
        table.add_column(column, overflow="fold")
    journal = {"phases": [phase_dict(p) for p in result.phases]}
    for when, figures in zip(timeline_rows(journal), phase_rows(journal), strict=True):
        name = when.name if when.kind == "phase" else f"stage {when.name}"
        if not when.completed:
            name += " (stopped early)"
        table.add_row(
            escape(redactor.text(name)),
            when.start,
            when.end,
            figures.calls,
            figures.success,
            figures.p95,
            escape(redactor.text(when.faults)),
        )
    console.print(table)


def make_console(*, quiet: bool = False, file: IO[str] | None = None) -> Observer:
    """The live view on a terminal, plain lines otherwise or when quiet."""
    console = Console(file=file, highlight=False)
    if quiet or not console.is_terminal:
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console = Console(file=file, highlight=False, width=120)  # logs are wide
        return PlainConsole(console, quiet=quiet)
    return LiveConsole(console)
