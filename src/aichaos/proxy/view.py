"""What a running proxy shows: a live table on a terminal, one plain line per request elsewhere.

Neither view prints headers, bodies or query strings: secrets travel there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from aichaos.faults.engine import FaultEngine
from aichaos.proxy.stats import ProxyStats
from aichaos.records import Attempt
from aichaos.secret_shapes import scrub

ViewMode = Literal["auto", "live", "lines", "quiet"]


class ProxyView(Protocol):
    async def run(self, stop: asyncio.Event) -> None:
        """Show the proxy's activity until `stop` is set."""

    def close(self) -> None:
        """Write what is still held back (once the proxy has stopped)."""


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def attempt_line(attempt: Attempt) -> str:
    """One finished attempt as a plain line (no headers, no query string)."""
    clock = time.strftime("%H:%M:%S")
    status = str(attempt.status) if attempt.status is not None else "---"
    if attempt.outcome not in (None, "complete"):  # a status alone hides a cut answer
        status = f"{status} {attempt.outcome}"
    took = f"{attempt.duration * 1000:.1f}ms" if attempt.duration is not None else "-"
    # a gateway may take its key in the path: shown only with key-shaped strings removed
    path = _SCRUBBED.get(attempt.path)
    if path is None:
        path = scrub(attempt.path)
        if len(_SCRUBBED) < 1024:  # the paths a proxy serves are few: each scrubbed once
            _SCRUBBED[attempt.path] = path
    parts = [clock, attempt.backend, attempt.method, path, status, took]
    if attempt.ttft is not None:
        parts.append(f"ttft={attempt.ttft * 1000:.1f}ms")
    if attempt.faults:
        parts.append("faults=" + ",".join(attempt.faults))
    if attempt.error:
        parts.append(f"error={attempt.error}")
    return " ".join(parts)


_SCRUBBED: dict[str, str] = {}

_CUT = frozenset({"stream_incomplete", "stream_error_event", "stalled"})
"""Outcomes of answers whose head arrived and whose body did not end well (see `Outcome`)."""


_HOLD_SECONDS = 0.05
"""Longest a line waits to be written with the ones after it (off a terminal)."""


class LineView:
    """Prints a line per finished attempt (logs, CI, pipes)."""

    def __init__(self, stats: ProxyStats, console: Console) -> None:
        self.console = console
        # Off a terminal rich adds nothing to a plain line but its cost (about 120 us per
        # request, most of the proxy's CPU): write the lines ourselves, those of the same
        # 50 ms in one write (a write per line woke the reader of the pipe every time: a
        # third of the proxy's CPU under load).
        plain = not console.is_terminal
        stats.listeners.append(self._hold if plain else self.attempt)
        self._held: list[str] = []
        self._flushing: asyncio.TimerHandle | None = None

    def attempt(self, attempt: Attempt) -> None:
        self.console.print(attempt_line(attempt), markup=False, highlight=False, soft_wrap=True)

    def _hold(self, attempt: Attempt) -> None:
        self._held.append(attempt_line(attempt))
        if self._flushing is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # told outside the proxy's loop: nothing to batch with
                self.close()
                return
            self._flushing = loop.call_later(_HOLD_SECONDS, self.close)

    def close(self) -> None:
        self._flushing = None
        if self._held:
            lines, self._held = self._held, []
            out = self.console.file
            out.write("\n".join(lines) + "\n")
            out.flush()

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.close()


class QuietView:
    """Shows nothing (benchmarks; the admin API still has the counters)."""

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    def close(self) -> None:
        pass


class LiveView:
    """A table per backend (requests, statuses, faults, latency and ttft percentiles),
    the active faults, and the kill switch's state, redrawn twice a second."""

    def __init__(
        self, stats: ProxyStats, engine: FaultEngine, console: Console, title: str = ""
    ) -> None:
        self.stats, self.engine, self.console, self.title = stats, engine, console, title

    def render(self) -> RenderableType:
        snap = self.stats.snapshot()
        table = Table(title=self.title or None, title_justify="left", expand=False)
        columns = ("backend", "requests", "inflight", "2xx", "4xx", "5xx", "dropped", "cut")
        for column in columns:
            table.add_column(column, justify="left" if column == "backend" else "right")
        for column in ("faults", "p50 ms", "p95 ms", "p99 ms", "ttft p50", "ttft p95"):
            table.add_column(column, justify="right")
        for name, row in snap["backends"].items():
            by_class = {"2": 0, "4": 0, "5": 0}
            for status, count in row["statuses"].items():
                if status[0] in by_class:
                    by_class[status[0]] += count
            table.add_row(
                name,
                str(row["requests"]),
                str(row["inflight"]),
                str(by_class["2"]),
                str(by_class["4"]),
                str(by_class["5"]),
                str(sum(row["errors"].values())),
                str(sum(n for outcome, n in row["outcomes"].items() if outcome in _CUT)),
                str(sum(row["faults"].values())),
                _fmt_ms(row["latency_ms"]["p50"]),
                _fmt_ms(row["latency_ms"]["p95"]),
                _fmt_ms(row["latency_ms"]["p99"]),
                _fmt_ms(row["ttft_ms"]["p50"]),
                _fmt_ms(row["ttft_ms"]["p95"]),
            )
        faults = Table(title="faults", title_justify="left", expand=False)
        for column in ("id", "fault", "state", "backend", "matched", "injected"):
            faults.add_column(column)
        elapsed = self.engine.elapsed
        for armed in self.engine.faults:
            faults.add_row(
                armed.id,
                armed.tag,
                armed.state(elapsed),
                armed.fault.backends_text,
                str(armed.matched),
                str(armed.injected),
            )
        state = (
            Text("PAUSED: no fault is injected (resume to inject again)", style="bold yellow")
            if self.engine.paused
            else Text(f"injecting: {len(self.engine.faults)} fault(s) armed", style="green")
        )
        return Group(table, state, faults)

    async def run(self, stop: asyncio.Event) -> None:
        with Live(self.render(), console=self.console, auto_refresh=False) as live:
            while not stop.is_set():
                live.update(self.render(), refresh=True)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
            live.update(self.render(), refresh=True)

    def close(self) -> None:
        pass  # the table's last state was drawn when `run` ended


def create_view(
    mode: ViewMode, stats: ProxyStats, engine: FaultEngine, console: Console, title: str = ""
) -> ProxyView:
    """`live` on a terminal (`auto`), else `lines`; `quiet` shows nothing."""
    if mode == "auto":
        mode = "live" if console.is_terminal else "lines"
    if mode == "live":
        return LiveView(stats, engine, console, title)
    if mode == "lines":
        return LineView(stats, console)
    return QuietView()


__all__ = ["LineView", "LiveView", "ProxyView", "QuietView", "attempt_line", "create_view"]
