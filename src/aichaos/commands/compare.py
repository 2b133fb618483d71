"""`aichaos compare OLD NEW`: what got better or worse between two runs.

Exits 1 when a check that held in OLD fails in NEW (a regression), else 0.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD_JOURNAL")
    parser.add_argument("new", metavar="NEW_JOURNAL")
    parser.add_argument("--all", action="store_true", help="also list figures that did not change")


def run(args: argparse.Namespace) -> int:
    from aichaos.commands.report import load

    old, new = load(args.old, "compare"), load(args.new, "compare")
    if old is None or new is None:
        return 2
    from rich.console import Console
    from rich.table import Table

    from aichaos.report.compare import compare_journals, regressed, same_experiment

    console = Console()
    if not same_experiment(old, new):
        console.print("[yellow]warning:[/] the journals come from different experiments")
    changes = compare_journals(old, new)
    shown = [c for c in changes if args.all or c.verdict != "same"]
    style = {"better": "green", "worse": "red", "new": "cyan", "gone": "yellow", "same": "dim"}
    table = Table(title=f"{args.old} -> {args.new}")
    for column in ("what", "old", "new", "change"):
        table.add_column(column)
    for c in shown:
        table.add_row(c.what, c.old, c.new, f"[{style[c.verdict]}]{c.verdict}[/]")
    if shown:
        console.print(table)
    else:
        console.print("no change")
    if regressed(changes):
        console.print("[red]regression:[/] a check that held before fails now")
        return 1
    return 0
