"""Pictures in the HTML report: the run over time with phases and fault windows shaded, and
served-by shares; rendered by a real headless Chromium (Debian's `chromium`, installed by
.ci/run) with no console error."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from aichaos.experiment import parse_experiment, run_experiment
from aichaos.report.charts import buckets, fault_windows
from aichaos.report.html import render_html
from aichaos.report.journal import journal_dict

TESTS = Path(__file__).parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

_EXPERIMENT = """
version: 1
title: charts
backends: {openai: {provider: openai}, claude: {provider: anthropic}}
target: {python: "experiment_targets:ask"}
load: {requests: 16, concurrency: 2}
phases: {baseline: {requests: 8}, recovery: {requests: 8}}
faults: [{backend: openai, kind: outage, window: {start: 0ms, duration: 1h}}]
hypothesis: [{check: success_rate, min: 0}]
"""


@pytest.fixture(scope="module")
def journal() -> dict[str, Any]:
    experiment = parse_experiment(textwrap.dedent(_EXPERIMENT), base_dir=TESTS)
    return journal_dict(anyio.run(functools.partial(run_experiment, experiment, 3)))


def test_fault_windows_and_slices_come_from_the_journal(journal: dict[str, Any]) -> None:
    inject = next(p for p in journal["phases"] if p["name"] == "inject")
    (window,) = fault_windows(journal)
    assert window.label == "outage on openai"
    assert (window.start, window.end) == (inject["started"], inject["ended"])  # cut at its end
    slices = buckets(journal)
    assert sum(len(b.calls) for b in slices) == len(journal["calls"]) == 32
    # A journal from before stages has no recorded windows: they come from the spec.
    older = [{k: v for k, v in p.items() if k != "faults"} for p in journal["phases"]]
    shifted = {**journal, "phases": older, "experiment": {"spec": {"faults": [
        {"kind": "outage", "backend": "openai", "window": {"start": "10ms", "duration": "5ms"}}
    ]}}}  # fmt: skip
    (late,) = fault_windows(shifted)
    assert late.start == pytest.approx(inject["started"] + 0.010)
    assert late.end == pytest.approx(inject["started"] + 0.015)


def test_the_report_draws_the_run_with_phases_and_faults_shaded(journal: dict[str, Any]) -> None:
    page = render_html(journal)
    assert page.count("<svg class='chart'") == 4
    assert page.count("class='fault'") == 4  # the window, shaded on every chart
    assert "<script" not in page
    assert "served by" in page.lower() and ">failed</span>" in page
    external = re.findall(r"(?:src|href)=['\"]?https?://", page)
    assert not external  # opens offline: nothing to fetch


_PROBE = """<script>
const charts = [...document.querySelectorAll('svg.chart')];
const sizes = charts.map(s => Math.round(s.getBoundingClientRect().width));
const drawn = charts.map(s => s.querySelectorAll('polyline, rect.served').length);
document.title = 'charts=' + charts.length + ' widths=' + sizes.join(',') +
  ' drawn=' + drawn.join(',') + ' faults=' + document.querySelectorAll('rect.fault').length;
</script></body>"""


def test_chromium_renders_the_charts_without_console_errors(
    journal: dict[str, Any], tmp_path: Path
) -> None:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: .ci/run installs Debian's `chromium`"
    page = tmp_path / "report.html"
    # The report has no script of its own: a probe appended to a copy reads the layout.
    page.write_text(render_html(journal).replace("</body>", _PROBE), encoding="utf-8")
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    title = re.search(r"<title>(charts=[^<]*)</title>", done.stdout)
    assert title, done.stdout[:500]
    found = dict(item.split("=") for item in title.group(1).split())
    assert found["charts"] == "4"
    assert all(int(w) > 300 for w in found["widths"].split(","))
    assert all(int(n) > 0 for n in found["drawn"].split(","))
    assert found["faults"] == "4"


def test_a_console_error_would_be_seen(tmp_path: Path) -> None:
    # The check above cannot pass by accident: a page that logs an error is caught.
    binary = shutil.which("chromium")
    assert binary
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><script>console.error('broken chart')</script>")
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert any(":CONSOLE" in line and "broken chart" in line for line in done.stderr.splitlines())
