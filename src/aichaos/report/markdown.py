"""A Markdown summary fit for a CI job summary page: verdict, checks, key figures."""

from __future__ import annotations

from typing import Any

from aichaos.report.summary import (
    as_journal,
    check_result,
    check_value,
    headline,
    key_figures,
    phase_rows,
    timeline_rows,
)

_MARK = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "❔"}
_STATUS_MARK = {"passed": "✅", "failed": "❌", "aborted": "🛑", "interrupted": "⚠️"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(result_or_journal: Any) -> str:
    """Markdown for a `RunResult` or a journal dict."""
    journal = as_journal(result_or_journal)
    mark = _STATUS_MARK.get(journal.get("status", ""), "")
    lines = [f"## {mark} {headline(journal)}", ""]
    lines.append(" · ".join(f"**{name}** {_cell(value)}" for name, value in key_figures(journal)))
    lines += ["", "| | check | phase | measured | bound | detail |", "|---|---|---|---|---|---|"]
    for check in journal.get("checks", []):
        value = check_value(check["check"], check.get("value"))
        cells = [check["check"], check.get("phase", "all"), value, check.get("bound", "")]
        row = " | ".join(_cell(c) for c in [*cells, check.get("detail", "")])
        word = check_result(check)
        lines.append(f"| {_MARK[word]} {word} | {row} |")
    if not journal.get("checks"):
        lines.append("| | (no checks) | | | | |")
    lines += ["", "### Timeline", "", "| | phase | from | to | faults (when active) |"]
    lines.append("|---|---|---|---|---|")
    for t in timeline_rows(journal):
        name = t.name if t.completed else f"{t.name} (stopped early)"
        cells = [t.kind, name, t.start, t.end, t.faults]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "### Phases",
        "",
        "| phase | calls | success | p50 | p95 | p99 | ttft p95 | attempts/call | faults"
        " | served by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in phase_rows(journal):
        cells = [r.name, r.calls, r.success, r.p50, r.p95, r.p99, r.ttft_p95]
        cells += [r.attempts_per_call, r.faults, r.served_by]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    faults = journal.get("faults") or []
    if faults:
        lines += [
            "",
            "### Faults",
            "",
            "| fault | phase | backend | matched | injected |",
            "|---|---|---|---|---|",
        ]
        for f in faults:
            backend = f.get("backend")
            backend = ", ".join(backend) if isinstance(backend, list) else backend
            cells = [f.get("label"), f.get("phase", "inject"), backend]
            cells += [f.get("matched"), f.get("injected")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
