"""Each figure across runs of an experiment (journals oldest first), with drift flagged.

Run `i` is compared with every earlier run pooled (`compare_samples`, the same statistics
as `aichaos compare`); a significant change is drift. `render_trend_html` draws one small
self-contained SVG chart per figure.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aichaos.report.compare import (
    NO_CHANGE,
    Change,
    PhaseSample,
    compare_samples,
    directions,
    phase_samples,
)
from aichaos.report.significance import BOOTSTRAP_REPS, mean, nearest_rank


@dataclass
class Series:
    """One figure over the runs: shown values, numbers, and each run's drift verdict."""

    what: str
    figure: str = ""  # success_rate, latency_pNN, attempts_per_call: its unit and scale
    shown: list[str] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)  # run 0: "", then vs. earlier runs


@dataclass
class Trend:
    labels: list[str]
    series: list[Series]

    @property
    def regressed(self) -> bool:
        """Whether the newest run got significantly worse than the runs before it."""
        return any(s.verdicts and s.verdicts[-1] == "worse" for s in self.series)


def build_trend(
    journals: list[dict[str, Any]],
    labels: list[str],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    seed: int = 0,
    reps: int = BOOTSTRAP_REPS,
) -> Trend:
    """The trend of `journals` (oldest first; `labels` name them in the table)."""
    samples = [phase_samples(j) for j in journals]
    better = directions(journals[-1]) if journals else directions({})
    series: dict[str, Series] = {}
    pooled: dict[str, PhaseSample] = {}
    for i, current in enumerate(samples):
        if i == 0:  # compared with itself, only to get the same rows shown
            changes = compare_samples(current, current, better=better, reps=1)
        else:
            changes = compare_samples(
                pooled, current, better=better, alpha=alpha, min_effect=min_effect,
                seed=seed, reps=reps,
            )  # fmt: skip
        for change in changes:
            s = series.setdefault(change.what, Series(change.what, change.figure))
            while len(s.shown) < i:  # a figure the earlier runs did not have
                s.shown.append("-")
                s.values.append(None)
                s.verdicts.append("")
            s.shown.append(change.new)
            s.values.append(_number(current, change))
            s.verdicts.append("" if i == 0 or change.verdict == NO_CHANGE else change.verdict)
        for name, sample in current.items():
            pooled.setdefault(name, PhaseSample()).extend(sample)
    for s in series.values():
        while len(s.shown) < len(journals):
            s.shown.append("-")
            s.values.append(None)
            s.verdicts.append("")
    return Trend(labels, list(series.values()))


def _number(samples: dict[str, PhaseSample], change: Change) -> float | None:
    sample = samples.get(change.phase)
    if sample is None or not sample.total:
        return None
    if change.figure == "success_rate":
        return sample.ok / sample.total
    if change.figure == "attempts_per_call":
        return mean(sample.attempts)
    pct = float(change.figure.removeprefix("latency_p"))
    return nearest_rank(sorted(sample.durations), pct)


_COLOURS = {"worse": "#c62828", "better": "#2e7d32", "changed": "#ef6c00"}


def _axis(figure: str, values: list[float]) -> tuple[float, Callable[[float], str]]:
    """The top of a figure's value axis (it starts at 0) and how its ticks read, with units:
    a rate from 0 to 100% (a flat 100% is a line at the top), seconds in ms or s."""
    if figure == "success_rate":
        return 1.0, lambda v: f"{v:.0%}"
    top = max(values) * 1.15 or 1.0
    if figure.startswith("latency_p"):
        if top < 10:
            return top, lambda v: f"{v * 1000:.0f} ms"
        return top, lambda v: f"{v:.1f} s"
    return top, lambda v: f"{v:.2g}"


def _chart(series: Series, labels: list[str]) -> str:
    """An inline SVG line chart of one figure, with a value axis (0 to the top, in the
    figure's unit) and a run axis (labels); drifting runs are coloured dots."""
    width, height = 360, 150
    left, right, top_pad, bottom = 56, 12, 10, 34
    points = [(i, v) for i, v in enumerate(series.values) if v is not None]
    if not points:
        return "<p>no data</p>"
    top, tick = _axis(series.figure, [v for _, v in points])
    steps = max(len(series.values) - 1, 1)
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + plot_w * i / steps
        y = top_pad + plot_h * (1 - min(max(v / top, 0.0), 1.0))
        return round(x, 1), round(y, 1)

    axes = [
        f"<line x1='{left}' y1='{top_pad}' x2='{left}' y2='{top_pad + plot_h}' stroke='#888'/>",
        f"<line x1='{left}' y1='{top_pad + plot_h}' x2='{left + plot_w}' y2='{top_pad + plot_h}'"
        " stroke='#888'/>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = round(top_pad + plot_h * (1 - fraction), 1)
        axes.append(
            f"<line x1='{left - 3}' y1='{y}' x2='{left}' y2='{y}' stroke='#888'/>"
            f"<text x='{left - 5}' y='{y + 3}' font-size='9' text-anchor='end'>"
            f"{html.escape(tick(top * fraction))}</text>"
        )
    every = max(1, -(-len(labels) // 6))  # at most about six run labels
    for i, label in enumerate(labels):
        if i % every and i != len(labels) - 1:
            continue
        x = round(left + plot_w * i / steps, 1)
        axes.append(
            f"<text x='{x}' y='{top_pad + plot_h + 13}' font-size='9' text-anchor='middle'>"
            f"{html.escape(label[:14])}</text>"
        )
    axes.append(
        f"<text x='{left + plot_w / 2}' y='{height - 4}' font-size='9' text-anchor='middle'"
        " fill='#555'>run</text>"
    )
    line = " ".join(f"{x},{y}" for x, y in (xy(i, v) for i, v in points))
    dots = []
    for i, v in points:
        x, y = xy(i, v)
        colour = _COLOURS.get(series.verdicts[i], "#1565c0")
        tip = html.escape(f"{labels[i]}: {series.shown[i]} {series.verdicts[i]}".strip())
        dots.append(
            f"<circle cx='{x}' cy='{y}' r='4' fill='{colour}'><title>{tip}</title></circle>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}'"
        f" width='{width}' height='{height}' role='img' aria-label='{html.escape(series.what)}'>"
        + "".join(axes)
        + f"<polyline points='{line}' fill='none' stroke='#1565c0' stroke-width='2'/>"
        + "".join(dots)
        + "</svg>"
    )


def render_trend_html(trend: Trend, title: str) -> str:
    """A self-contained page: the table, and a chart per figure (no script, no CDN)."""
    head = "".join(f"<th>{html.escape(label)}</th>" for label in trend.labels)
    rows = []
    for s in trend.series:
        cells = "".join(
            f"<td class='{v or 'same'}'>{html.escape(shown)}{' ' + v if v else ''}</td>"
            for shown, v in zip(s.shown, s.verdicts, strict=True)
        )
        rows.append(f"<tr><th>{html.escape(s.what)}</th>{cells}</tr>")
    charts = "".join(
        f"<figure><figcaption>{html.escape(s.what)}</figcaption>{_chart(s, trend.labels)}</figure>"
        for s in trend.series
    )
    verdict = "significant regression in the newest run" if trend.regressed else "no regression"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        ".worse{color:#c62828}.better{color:#2e7d32}.changed{color:#ef6c00}"
        "figure{display:inline-block;margin:8px}figcaption{font-size:90%}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{verdict}</p>"
        f"<table><tr><th>figure</th>{head}</tr>{''.join(rows)}</table>"
        f"<h2>Charts</h2>{charts}</body></html>\n"
    )
