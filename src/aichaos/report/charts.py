"""Pictures of a run for the HTML report: inline SVG (no script, no external asset).

From a journal's calls (bucketed by start time): success rate, latency p50/p95 and attempts
per call over the run, with each phase and each fault window shaded; and the share of calls
each backend served over the run (stacked bars, failed calls apart).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from aichaos.report.significance import nearest_rank
from aichaos.report.summary import duration
from aichaos.units import parse_duration

WIDTH, HEIGHT = 1000, 150
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 18, 22
PHASE_FILLS = ("#eef2f7", "#f7f4ee")
FAULT_FILL = "#b42318"
PALETTE = ("#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037")
FAILED = "#9e9e9e"

STYLE = """
svg.chart{display:block;width:100%;height:auto;margin:.2rem 0 .8rem}
svg.chart text{font:11px system-ui,sans-serif;fill:#555}
.legend span{display:inline-block;margin-right:1rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
"""


@dataclass
class Bucket:
    start: float
    end: float
    calls: list[dict[str, Any]]


@dataclass
class Span:
    label: str
    start: float
    end: float


def _span_of(journal: dict[str, Any]) -> float:
    ends = [float(c["ended"]) for c in journal.get("calls", []) if c.get("ended") is not None]
    ends += [float(p["ended"]) for p in journal.get("phases", []) if p.get("ended") is not None]
    return max(ends, default=0.0)


def buckets(journal: dict[str, Any], count: int | None = None) -> list[Bucket]:
    """Calls grouped by start time into equal slices of the run (about 4 calls a slice,
    between 5 and 40 slices)."""
    calls = [c for c in journal.get("calls", []) if c.get("started") is not None]
    total = _span_of(journal)
    if not calls or total <= 0:
        return []
    n = count or min(40, max(5, len(calls) // 4))
    width = total / n
    out = [Bucket(i * width, (i + 1) * width, []) for i in range(n)]
    for call in calls:
        index = min(int(float(call["started"]) / width), n - 1)
        out[index].calls.append(call)
    return out


def phases(journal: dict[str, Any]) -> list[Span]:
    return [
        Span(str(p["name"]), float(p["started"]), float(p.get("ended") or p["started"]))
        for p in journal.get("phases", [])
        if p.get("started") is not None
    ]


def fault_windows(journal: dict[str, Any]) -> list[Span]:
    """When each fault was active, as the run recorded it per phase or stage (journals from
    before stages: its window from the start of the phase that injected, cut at its end)."""
    spec = (journal.get("experiment") or {}).get("spec") or {}
    faults = spec.get("faults") or []
    out = []
    for phase in journal.get("phases", []):
        if phase.get("faults") is not None:
            for w in phase["faults"]:
                backend = w.get("backend", "*")
                label = f"{w.get('name')}: " if w.get("name") else ""
                label += f"{w.get('kind')} on {backend}"
                out.append(Span(label, float(w["start"]), float(w["end"])))
            continue
        if not (phase.get("planned") or {}).get("faults") or phase.get("started") is None:
            continue
        start, end = float(phase["started"]), float(phase.get("ended") or phase["started"])
        for fault in faults:
            window = fault.get("window") or {}
            opens = start + parse_duration(window.get("start", 0))
            length = window.get("duration")
            closes = end if length is None else min(end, opens + parse_duration(length))
            if opens < end:
                backend = fault.get("backend", "*")
                label = f"{fault.get('kind')} on {backend}"
                out.append(Span(label, opens, closes))
    return out


class _Frame:
    """One chart's axes: seconds across, `low`..`high` up."""

    def __init__(self, total: float, low: float, high: float) -> None:
        self.total, self.low, self.high = total, low, high if high > low else low + 1

    def x(self, t: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * t / self.total, 1)

    def y(self, v: float) -> float:
        span = self.high - self.low
        return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (v - self.low) / span, 1)


def _backdrop(frame: _Frame, journal: dict[str, Any], fmt: Callable[[float], str]) -> list[str]:
    out = []
    for i, p in enumerate(phases(journal)):
        x0, x1 = frame.x(p.start), frame.x(p.end)
        out.append(
            f"<rect x='{x0}' y='{TOP}' width='{max(x1 - x0, 0.5)}' height='{HEIGHT - TOP - BOTTOM}'"
            f" fill='{PHASE_FILLS[i % 2]}'><title>{escape(p.label)}</title></rect>"
            f"<text x='{x0 + 3}' y='{TOP - 5}'>{escape(p.label)}</text>"
        )
    for w in fault_windows(journal):
        x0, x1 = frame.x(w.start), frame.x(w.end)
        out.append(
            f"<rect class='fault' x='{x0}' y='{TOP}' width='{max(x1 - x0, 0.5)}'"
            f" height='{HEIGHT - TOP - BOTTOM}' fill='{FAULT_FILL}' fill-opacity='0.13'>"
            f"<title>{escape(w.label)}: {duration(w.start)} to {duration(w.end)}</title></rect>"
        )
    base, top = HEIGHT - BOTTOM, TOP
    out.append(
        f"<line x1='{LEFT}' y1='{base}' x2='{WIDTH - RIGHT}' y2='{base}' stroke='#999'/>"
        f"<line x1='{LEFT}' y1='{top}' x2='{LEFT}' y2='{base}' stroke='#999'/>"
        f"<text x='{LEFT - 4}' y='{base}' text-anchor='end'>"
        f"{escape(fmt(frame.low)) if frame.low else '0'}</text>"
        f"<text x='{LEFT - 4}' y='{top + 8}' text-anchor='end'>{escape(fmt(frame.high))}</text>"
        f"<text x='{LEFT}' y='{HEIGHT - 6}'>0s</text>"
        f"<text x='{WIDTH - RIGHT}' y='{HEIGHT - 6}' text-anchor='end'>"
        f"{escape(duration(frame.total))}</text>"
    )
    return out


def _svg(title: str, parts: Sequence[str]) -> str:
    return (
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}'"
        f" role='img' aria-label='{escape(title)}'><title>{escape(title)}</title>"
        + "".join(parts)
        + "</svg>"
    )


def _line(frame: _Frame, points: list[tuple[float, float]], colour: str, name: str) -> str:
    if not points:
        return ""
    coords = " ".join(f"{frame.x(t)},{frame.y(v)}" for t, v in points)
    dots = "".join(
        f"<circle cx='{frame.x(t)}' cy='{frame.y(v)}' r='2.5' fill='{colour}'/>" for t, v in points
    )
    return (
        f"<polyline class='series' points='{coords}' fill='none' stroke='{colour}'"
        f" stroke-width='2'><title>{escape(name)}</title></polyline>{dots}"
    )


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    spans = "".join(
        f"<span><i style='background:{colour}'></i>{escape(name)}</span>"
        for name, colour in entries
    )
    return f"<div class='legend'>{spans}</div>"


def _share(v: float) -> str:
    return f"{v * 100:.0f}%"


def timeline(journal: dict[str, Any]) -> str:
    """The run over time: success rate, latency p50/p95, attempts per call (HTML)."""
    slices = buckets(journal)
    if not slices:
        return "<p>No calls to draw.</p>"
    total = slices[-1].end
    mid = [(b.start + b.end) / 2 for b in slices]
    done = [[c for c in b.calls if c.get("duration") is not None] for b in slices]
    success = [
        (t, sum(1 for c in calls if c.get("ok")) / len(calls))
        for t, calls in zip(mid, done, strict=True)
        if calls
    ]
    latency: dict[int, list[tuple[float, float]]] = {50: [], 95: []}
    attempts = []
    for t, calls in zip(mid, done, strict=True):
        if not calls:
            continue
        ordered = sorted(float(c["duration"]) for c in calls)
        for pct, series in latency.items():
            series.append((t, nearest_rank(ordered, pct)))
        attempts.append((t, sum(len(c.get("attempts") or []) for c in calls) / len(calls)))
    out = ["<h3>Success rate</h3>"]
    frame = _Frame(total, 0.0, 1.0)
    out.append(
        _svg(
            "success rate over the run",
            [*_backdrop(frame, journal, _share), _line(frame, success, PALETTE[1], "success")],
        )
    )
    top = max((v for _, v in latency[95]), default=0.0) * 1.1
    frame = _Frame(total, 0.0, top or 1.0)
    out.append("<h3>Latency</h3>")
    out.append(_legend([("p50", PALETTE[0]), ("p95", PALETTE[2])]))
    out.append(
        _svg(
            "latency p50 and p95 over the run",
            [
                *_backdrop(frame, journal, duration),
                _line(frame, latency[50], PALETTE[0], "p50"),
                _line(frame, latency[95], PALETTE[2], "p95"),
            ],
        )
    )
    most = max((v for _, v in attempts), default=1.0)
    frame = _Frame(total, 0.0, math.ceil(max(most, 1.0)) + 0.5)
    out.append("<h3>Attempts per call</h3>")
    out.append(
        _svg(
            "attempts per call over the run",
            [
                *_backdrop(frame, journal, lambda v: f"{v:g}"),
                _line(frame, attempts, PALETTE[3], "attempts per call"),
            ],
        )
    )
    return "\n".join(out)


def served_by(journal: dict[str, Any]) -> str:
    """Who served the calls over the run: stacked shares per slice, failed calls grey."""
    slices = buckets(journal)
    if not slices:
        return ""
    names = list(
        dict.fromkeys(c["served_by"] for b in slices for c in b.calls if c.get("served_by"))
    )
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    frame = _Frame(slices[-1].end, 0.0, 1.0)
    parts = _backdrop(frame, journal, _share)
    for b in slices:
        if not b.calls:
            continue
        counts = Counter(c.get("served_by") or "" for c in b.calls)
        level = 0.0
        x0, x1 = frame.x(b.start) + 1, frame.x(b.end) - 1
        for name in [*names, ""]:
            share = counts.get(name, 0) / len(b.calls)
            if not share:
                continue
            y_top, y_bottom = frame.y(level + share), frame.y(level)
            label = name or "failed"
            parts.append(
                f"<rect class='served' x='{x0}' y='{y_top}' width='{max(x1 - x0, 0.5)}'"
                f" height='{round(y_bottom - y_top, 1)}' fill='{colours.get(name, FAILED)}'"
                f" fill-opacity='0.85'><title>{escape(label)}: {_share(share)}</title></rect>"
            )
            level += share
    legend = _legend([*((n, colours[n]) for n in names), ("failed", FAILED)])
    return "<h3>Served by</h3>" + legend + _svg("share of calls each backend served", parts)


def charts(journal: dict[str, Any]) -> str:
    """Both pictures, with a note on what the shading means."""
    if not buckets(journal):
        return ""
    note = (
        "<p>Calls grouped by when they started. Shaded: the phases, and in red each fault's"
        " window.</p>"
    )
    return note + timeline(journal) + "\n" + served_by(journal)


__all__ = ["STYLE", "buckets", "charts", "fault_windows", "served_by", "timeline"]
