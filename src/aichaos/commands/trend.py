"""`aichaos trend JOURNAL...`: each figure across runs (oldest first), drift flagged.

Each run is compared with the runs before it; exits 1 when the newest run got significantly
worse, 0 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from aichaos.commands.compare import STYLE, add_statistics_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journals", nargs="+", metavar="JOURNAL", help="journals, oldest first")
    parser.add_argument("--html", metavar="P", help="write the table and charts as HTML")
    add_statistics_options(parser)


def run(args: argparse.Namespace) -> int:
    from aichaos.commands.report import load

    journals = [load(path, "trend") for path in args.journals]
    if any(j is None for j in journals):
        return 2
    from rich.console import Console
    from rich.table import Table

    from aichaos.report.trend import build_trend, render_trend_html

    loaded = [j for j in journals if j is not None]
    labels = [Path(p).stem for p in args.journals]
    trend = build_trend(
        loaded, labels, alpha=args.alpha, min_effect=args.min_effect, seed=args.seed
    )
    console = Console(highlight=False)
    table = Table(title="trend (each run against the runs before it)")
    table.add_column("figure")
    for label in labels:
        table.add_column(label)
    for s in trend.series:
        cells = [
            f"{shown} [{STYLE.get(v, 'dim')}]{v}[/]" if v else shown
            for shown, v in zip(s.shown, s.verdicts, strict=True)
        ]
        table.add_row(s.what, *cells)
    console.print(table)
    if args.html:
        about: Any = loaded[-1].get("experiment") or {}
        title = str(about.get("title") or "aichaos trend")
        html = Path(args.html)
        try:
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(render_trend_html(trend, f"Trend: {title}"), encoding="utf-8")
        except OSError as exc:
            print(
                f"aichaos trend: --html {html}: cannot write it: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    if trend.regressed:
        console.print("[red]regression:[/] the newest run got significantly worse")
        return 1
    return 0
