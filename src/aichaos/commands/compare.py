"""`aichaos compare OLD NEW`: what changed between two runs, and whether it is more than noise.

Exits 1 only when a figure got significantly worse (a regression), else 0; 2 for bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from aichaos.commands.options import fraction, seed


def add_statistics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alpha",
        type=fraction,
        default=0.05,
        metavar="A",
        help="significance level, for all figures together (default 0.05)",
    )
    parser.add_argument(
        "--min-effect",
        type=fraction,
        default=0.05,
        metavar="E",
        help="smallest change that counts: rates in absolute share (0.05 = 5 points),"
        " latency and attempts relative (0.05 = 5%%) (default 0.05)",
    )
    parser.add_argument(
        "--seed", type=seed, default=0, metavar="N", help="seed of the bootstrap (default 0)"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD_JOURNAL")
    parser.add_argument("new", metavar="NEW_JOURNAL")
    add_statistics_options(parser)
    parser.add_argument("--all", action="store_true", help="also list figures that did not change")


STYLE = {
    "better": "green",
    "worse": "red",
    "changed": "yellow",
    "now fails": "red",
    "now holds": "green",
    "new": "cyan",
    "gone": "yellow",
}


def p_text(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def run(args: argparse.Namespace) -> int:
    from aichaos.commands.report import load

    old, new = load(args.old, "compare"), load(args.new, "compare")
    if old is None or new is None:
        return 2
    from rich.console import Console
    from rich.table import Table

    from aichaos.report.compare import NO_CHANGE, compare_journals, regressed, same_experiment

    console = Console(highlight=False)
    if not same_experiment(old, new):
        console.print("[yellow]warning:[/] the journals come from different experiments")
    changes = compare_journals(
        old, new, alpha=args.alpha, min_effect=args.min_effect, seed=args.seed
    )
    quiet = (NO_CHANGE, "same")
    shown = [c for c in changes if args.all or c.verdict not in quiet]
    table = Table(title=f"{args.old} -> {args.new}")
    for column in ("what", "old", "new", "change", "p", "verdict"):
        table.add_column(column)
    for c in shown:
        verdict: Any = c.verdict + (f" ({c.note})" if c.note else "")
        style = STYLE.get(c.verdict, "dim")
        table.add_row(c.what, c.old, c.new, c.delta, p_text(c.p_value), f"[{style}]{verdict}[/]")
    if shown:
        console.print(table)
    else:
        console.print(f"{NO_CHANGE} (alpha {args.alpha}, min effect {args.min_effect})")
    if regressed(changes):
        console.print("[red]regression:[/] a figure got significantly worse")
        return 1
    return 0
