"""The journal: the machine-readable record of one run (JSON).

It holds the experiment as run, the seed, versions, timings, every call with
its upstream attempts and faults, per-phase metrics, the check verdicts and the
status. Secrets never appear in it: records carry no headers or bodies, and
everything is passed through the `Redactor` before it is written.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from aichaos import __version__
from aichaos.experiment.attribution import served_options
from aichaos.experiment.results import CallRecord, PhaseResult
from aichaos.experiment.run_result import RunResult
from aichaos.records import Attempt
from aichaos.report.redact import Redactor

JOURNAL_FORMAT = "aichaos-journal"
JOURNAL_VERSION = 1
_PACKAGES = ("openai", "anthropic", "google-genai", "httpx", "httpx2", "pydantic", "anyio")
_TEXT_LIMIT = 2000


def versions() -> dict[str, Any]:
    """aichaos, Python, platform and SDK versions, for the journal."""
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "aichaos": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _TEXT_LIMIT:
        return text
    return text[:_TEXT_LIMIT] + f"... [{len(text) - _TEXT_LIMIT} more characters]"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def attempt_dict(attempt: Attempt, origin: float) -> dict[str, Any]:
    """One upstream attempt for the journal (times from the start of the run)."""
    data = attempt.to_dict()
    data["started"] = _round(attempt.started - origin)  # seconds from the run's start
    for key in ("headers_at", "ttft", "duration"):
        data[key] = _round(data[key])
    data["ok"] = attempt.ok
    return data


def call_dict(call: CallRecord, origin: float) -> dict[str, Any]:
    """One call and its attempts for the journal."""
    return {
        "id": call.id,
        "phase": call.phase,
        "index": call.index,
        "prompt": _clip(call.prompt),
        "scheduled": _round(call.scheduled),
        "started": _round(call.started),
        "ended": _round(call.ended),
        "duration": _round(call.duration),
        "ok": call.ok,
        "status": call.status,
        "error": call.error,
        "message": call.message,
        "output": _clip(call.output),
        "ttft": _round(call.ttft),
        **_served(call),
        "trace_id": call.trace_id,
        "attempts": [attempt_dict(a, origin) for a in call.attempts],
        "possible_attempts": len(call.possible),  # could be its own or another call's
    }


def _served(call: CallRecord) -> dict[str, Any]:
    """Who served a call, as the checks see it: a backend, None (failed, or no complete
    answer), or `unknown` with `served_by_candidates` when attribution leaves several
    backends possible (the checks judging it are then INCONCLUSIVE)."""
    options = served_options(call)
    if len(options) == 1:
        return {"served_by": next(iter(options))}
    candidates = sorted(option or "no complete answer" for option in options)
    return {"served_by": "unknown", "served_by_candidates": candidates}


def phase_dict(phase: PhaseResult) -> dict[str, Any]:
    """One phase or stage of the timeline for the journal: times, plan, faults as they were
    really active (`faults`: label, name, kind, backend, start, end), figures."""
    return {
        "name": phase.name,
        "stage": phase.stage,
        "started": _round(phase.started),
        "ended": _round(phase.ended),
        "completed": phase.completed,
        "planned": phase.planned,
        "faults": [w.to_dict() for w in phase.fault_windows],
        "metrics": phase.metrics,
    }


def journal_dict(result: RunResult) -> dict[str, Any]:
    """The journal as JSON-ready data, secrets removed."""
    experiment = result.experiment
    spec = experiment.model_dump(mode="json", by_alias=True, exclude_none=True)
    tied = {id(a) for call in result.calls for a in call.attempts}
    untied = sorted((a for a in result.attempts if id(a) not in tied), key=lambda a: a.started)
    first = min((c.started for c in result.calls), default=None)
    startup = sum(1 for a in untied if first is None or a.started - result.clock_origin < first)
    data = {
        "format": JOURNAL_FORMAT,
        "version": JOURNAL_VERSION,
        "experiment": {
            "title": experiment.name,
            "file": str(experiment.source) if experiment.source else None,
            "spec": spec,
        },
        "status": result.status,
        "exit_code": result.exit_code,
        "reason": result.reason,
        "seed": result.seed,
        "versions": versions(),
        "timings": {
            "started_at": datetime.fromtimestamp(result.started_at, timezone.utc).isoformat(),
            "duration": _round(result.duration),
            "fault_end": _round(result.fault_end),
        },
        "phases": [phase_dict(p) for p in result.phases],
        "checks": [c.to_dict() for c in result.checks],
        "attribution": result.attribution,
        "faults": result.faults,
        "events": result.events,
        "calls": [call_dict(c, result.clock_origin) for c in result.calls],
        # Untied attempts before the first call: the app's start-up traffic, apart.
        "startup_attempts": [attempt_dict(a, result.clock_origin) for a in untied[:startup]],
        "unattributed_attempts": [attempt_dict(a, result.clock_origin) for a in untied[startup:]],
    }
    return Redactor.for_run(spec).data(data)  # type: ignore[no-any-return]


def write_journal(result: RunResult, path: str | Path) -> Path:
    """Write the run's journal as JSON; returns the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(journal_dict(result), indent=2, ensure_ascii=False, default=str)
    target.write_text(text + "\n", encoding="utf-8")
    return target


def read_journal(path: str | Path) -> dict[str, Any]:
    """Load a journal written by `write_journal`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
        raise ValueError(f"{path} is not an aichaos journal")
    return data
