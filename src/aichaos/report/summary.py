"""What every report shows, taken from a journal: verdict, checks, per-phase figures.

The Markdown and HTML renderers and `aichaos compare` all read journals (the
dict `journal_dict` makes, or a journal file), so a report can be rendered
later from a file exactly as at the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_DURATION_CHECKS = {"latency", "ttft", "recovery_time"}
_SHARE_CHECKS = {"success_rate", "error_rate", "served_by", "response", "incomplete_answers"}

VERDICTS = {
    "passed": "PASSED: every hypothesis held",
    "failed": "FAILED: a hypothesis did not hold",
    "aborted": "ABORTED: a stop condition fired",
    "interrupted": "INTERRUPTED",
}


def as_journal(result_or_journal: Any) -> dict[str, Any]:
    """A journal dict from a `RunResult` or a journal already loaded."""
    if isinstance(result_or_journal, dict):
        return result_or_journal
    from aichaos.report.journal import journal_dict

    return journal_dict(result_or_journal)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds == float("inf"):
        return "never"  # e.g. `recovery_time` when success did not return
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.001 else f"{seconds * 1000:.2f}ms"
    return f"{seconds:.2f}s"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%".replace(".0%", "%")


def check_value(check: str, value: float | None) -> str:
    """A check's measured value in the unit a person reads it in."""
    if value is None:
        return "-"
    if check in _DURATION_CHECKS:
        return duration(value)
    if check in _SHARE_CHECKS:
        return share(value)
    return f"{value:g}"


def check_result(check: dict[str, Any]) -> str:
    """`PASS`, `FAIL` or `INCONCLUSIVE` for a journal's check (older journals: from `passed`)."""
    result = check.get("result")
    if isinstance(result, str):
        return result
    return "PASS" if check.get("passed") else "FAIL"


def calls_figure(calls: int, cancelled: int) -> str:
    """`25` or `25 (3 cancelled)`: one count of calls for footers and phase lines; `calls`
    counts every call, the cancelled ones among them."""
    return f"{calls} ({cancelled} cancelled)" if cancelled else str(calls)


@dataclass
class PhaseRow:
    name: str
    calls: str
    success: str
    p50: str
    p95: str
    p99: str
    ttft_p95: str
    attempts_per_call: str
    faults: str
    served_by: str


def phase_rows(journal: dict[str, Any]) -> list[PhaseRow]:
    rows = []
    for phase in journal.get("phases", []):
        m = phase.get("metrics") or {}
        latency, ttft = m.get("latency") or {}, m.get("ttft") or {}
        attempts = m.get("attempts") or {}
        rows.append(
            PhaseRow(
                name=phase["name"],
                calls=calls_figure(
                    m.get("requests", 0) + m.get("cancelled", 0), m.get("cancelled", 0)
                ),
                success=share(m.get("success_rate")),
                p50=duration(latency.get("p50")),
                p95=duration(latency.get("p95")),
                p99=duration(latency.get("p99")),
                ttft_p95=duration(ttft.get("p95")),
                attempts_per_call=(
                    "-" if attempts.get("per_call") is None else f"{attempts['per_call']:.2f}"
                ),
                faults=_counts(m.get("faults")),
                served_by=_counts(m.get("served_by")),
            )
        )
    return rows


@dataclass
class TimelineRow:
    name: str
    kind: str  # `phase` or `stage`
    start: str
    end: str
    faults: str  # each fault as it was active, e.g. `down: outage on openai 1.20s-4.00s`
    completed: bool


def timeline_rows(journal: dict[str, Any]) -> list[TimelineRow]:
    """The run's timeline: baseline, the inject phase or each stage, recovery, with when each
    ran and when each of its faults was active (older journals: faults from the spec)."""
    rows = []
    spec = (journal.get("experiment") or {}).get("spec") or {}
    for phase in journal.get("phases", []):
        windows = phase.get("faults")
        if windows is None and (phase.get("planned") or {}).get("faults"):
            windows = [  # a journal from before stages: the inject phase's faults, whole phase
                {"kind": f.get("kind"), "backend": f.get("backend", "*")}
                for f in spec.get("faults") or []
            ]
        rows.append(
            TimelineRow(
                name=str(phase.get("name")),
                kind="stage" if phase.get("stage") else "phase",
                start=duration(phase.get("started")),
                end=duration(phase.get("ended")),
                faults="; ".join(_window_text(w) for w in windows or []) or "-",
                completed=bool(phase.get("completed", True)),
            )
        )
    return rows


def _window_text(window: dict[str, Any]) -> str:
    backend = window.get("backend")
    backend = ", ".join(backend) if isinstance(backend, list) else backend
    what = f"{window.get('kind')} on {backend}"
    # its name; else a label that says more than its kind (a live proxy's `f3 slow (live)`)
    label = window.get("label")
    telling = label and not str(label).startswith(str(window.get("kind")))
    name = window.get("name") or (label if telling else "")
    text = f"{name}: {what}" if name else what
    if window.get("start") is not None:
        text += f" {duration(window['start'])}-{duration(window.get('end'))}"
    return text


def has_stages(journal: dict[str, Any]) -> bool:
    return any(p.get("stage") for p in journal.get("phases", []))


def _counts(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (counts or {}).items()) or "-"


def headline(journal: dict[str, Any]) -> str:
    status = journal.get("status", "?")
    title = (journal.get("experiment") or {}).get("title") or "experiment"
    return f"{VERDICTS.get(status, status.upper())} ({title})"


def key_figures(journal: dict[str, Any]) -> list[tuple[str, str]]:
    calls = journal.get("calls", [])
    timings = journal.get("timings") or {}
    cancelled = sum(1 for c in calls if c.get("error") == "cancelled")
    attempts = sum(len(c.get("attempts", [])) for c in calls)
    figures = [
        ("file", (journal.get("experiment") or {}).get("file") or "-"),
        ("seed", str(journal.get("seed"))),
        ("calls", calls_figure(len(calls), cancelled)),
        ("attempts", str(attempts + len(journal.get("unattributed_attempts") or []))),
        ("duration", duration(timings.get("duration"))),
        ("exit code", str(journal.get("exit_code"))),
    ]
    if journal.get("startup_attempts"):
        figures.append(("start-up attempts", str(len(journal["startup_attempts"]))))
    tied = journal.get("attribution") or {}
    if tied.get("inferred") or tied.get("ambiguous") or tied.get("outside"):
        figures.append(("attribution", attribution_text(tied)))
    if journal.get("reason"):
        figures.append(("reason", str(journal["reason"])))
    return figures


def attribution_text(tally: dict[str, int]) -> str:
    """How attempts were tied to calls, e.g. `40 exact, 12 inferred, 3 ambiguous, 0 outside`."""
    text = ", ".join(
        f"{tally.get(k, 0)} {k}" for k in ("exact", "inferred", "ambiguous", "outside")
    )
    return f"{text}, {tally['startup']} at start-up" if tally.get("startup") else text
