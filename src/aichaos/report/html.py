"""A self-contained HTML report (no scripts, no external assets) of one run."""

from __future__ import annotations

from html import escape
from typing import Any

from aichaos.report.charts import STYLE as CHART_STYLE
from aichaos.report.charts import charts
from aichaos.report.summary import (
    as_journal,
    check_result,
    check_value,
    duration,
    headline,
    key_figures,
    phase_rows,
    timeline_rows,
)

_MAX_CALLS = 500  # beyond this the page gets heavy; the journal has them all

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5} .pass{color:#13794b;font-weight:600} .fail{color:#b42318;font-weight:600}
.unsure{color:#9a6700;font-weight:600}
.status-passed{border-left:6px solid #13794b;padding-left:.6rem}
.status-failed,.status-aborted,.status-interrupted{border-left:6px solid #b42318;padding-left:.6rem}
dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem} dt{color:#666}
details{margin:.2rem 0} code{background:#f5f5f5;padding:0 .2rem}
"""


_CLASS = {"PASS": "pass", "FAIL": "fail", "INCONCLUSIVE": "unsure"}


def _row(cells: list[object], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def render_html(result_or_journal: Any) -> str:
    """HTML for a `RunResult` or a journal dict."""
    journal = as_journal(result_or_journal)
    status = escape(str(journal.get("status", "")))
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(headline(journal))}</title>",
        f"<style>{_STYLE}{CHART_STYLE}</style></head><body>",
        f"<h1 class='status-{status}'>{escape(headline(journal))}</h1><dl>",
    ]
    out += [f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in key_figures(journal)]
    out.append("</dl><h2>Hypothesis</h2><table>")
    out.append(_row(["result", "check", "phase", "measured", "bound", "detail"], "th"))
    for check in journal.get("checks", []):
        word = check_result(check)
        verdict = f"<td class='{_CLASS[word]}'>{word}</td>"
        cells = [
            check["check"],
            check.get("phase", "all"),
            check_value(check["check"], check.get("value")),
            check.get("bound", ""),
            check.get("detail", ""),
        ]
        out.append("<tr>" + verdict + _row(cells)[4:])
    out.append("</table><h2>Timeline</h2><table>")
    out.append(_row(["", "phase", "from", "to", "faults (when active)"], "th"))
    for t in timeline_rows(journal):
        name = t.name if t.completed else f"{t.name} (stopped early)"
        out.append(_row([t.kind, name, t.start, t.end, t.faults]))
    out.append("</table><h2>Phases</h2><table>")
    header = ["phase", "calls", "success", "p50", "p95", "p99", "ttft p95", "attempts/call"]
    out.append(_row([*header, "faults", "served by"], "th"))
    for r in phase_rows(journal):
        cells = [r.name, r.calls, r.success, r.p50, r.p95, r.p99, r.ttft_p95]
        out.append(_row([*cells, r.attempts_per_call, r.faults, r.served_by]))
    out.append("</table>")
    pictures = charts(journal)
    if pictures:
        out += ["<h2>Over the run</h2>", pictures]
    out += _faults(journal) + _calls(journal) + _events(journal)
    out.append("</body></html>")
    return "\n".join(out)


def _faults(journal: dict[str, Any]) -> list[str]:
    faults = journal.get("faults") or []
    if not faults:
        return []
    header: list[object] = ["fault", "phase", "backend", "matched", "injected"]
    out = ["<h2>Faults</h2><table>", _row(header, "th")]
    for f in faults:
        backend = f.get("backend")
        backend = ", ".join(backend) if isinstance(backend, list) else backend
        cells = [f.get("label"), f.get("phase", "inject"), backend]
        out.append(_row([*cells, f.get("matched"), f.get("injected")]))
    return [*out, "</table>"]


def _calls(journal: dict[str, Any]) -> list[str]:
    calls = journal.get("calls") or []
    out = [f"<h2>Calls ({len(calls)})</h2>"]
    if len(calls) > _MAX_CALLS:
        out.append(f"<p>The first {_MAX_CALLS}; the journal has every call.</p>")
    for call in calls[:_MAX_CALLS]:
        ok = call.get("ok")
        outcome = "ok" if ok else (call.get("error") or f"status {call.get('status')}")
        summary = (
            f"{call.get('id')} · {outcome} · {duration(call.get('duration'))} · "
            f"{len(call.get('attempts', []))} attempt(s) · served by {call.get('served_by') or '-'}"
        )
        out.append(
            f"<details><summary class='{'pass' if ok else 'fail'}'>{escape(summary)}</summary>"
        )
        out.append("<table>" + _row(["backend", "path", "faults", "status", "error", "time"], "th"))
        for a in call.get("attempts", []):
            cells = [a.get("backend"), a.get("path"), ", ".join(a.get("faults") or []) or "-"]
            cells += [a.get("status"), a.get("error") or "-", duration(a.get("duration"))]
            out.append(_row(cells))
        out.append("</table></details>")
    return out


def _events(journal: dict[str, Any]) -> list[str]:
    events = journal.get("events") or []
    if not events:
        return []
    out = ["<h2>Events</h2><table>", _row(["at", "event"], "th")]
    out += [_row([duration(e.get("at")), e.get("message")]) for e in events]
    return [*out, "</table>"]
