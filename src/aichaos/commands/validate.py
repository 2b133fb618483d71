"""`aichaos validate FILE...`: check experiment files without running anything."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment YAML files")
    parser.add_argument("--quiet", action="store_true", help="print problems only")


def run(args: argparse.Namespace) -> int:
    from aichaos.experiment.errors import ExperimentError
    from aichaos.experiment.loader import load_experiment

    bad = 0
    for path in args.files:
        try:
            experiment = load_experiment(path)
        except ExperimentError as exc:
            bad += 1
            print(exc.format(), file=sys.stderr)
            continue
        for warning in experiment.warnings:
            print(f"warning: {warning.format()}", file=sys.stderr)
        if not args.quiet:
            checks = _count(len(experiment.hypothesis), "check")
            faults = _count(len(experiment.all_faults()), "fault")
            stages = f"{_count(len(experiment.stages), 'stage')}, " if experiment.stages else ""
            print(f"{path}: ok ({experiment.name}; {stages}{faults}, {checks})")
    if bad:
        print(f"{bad} of {len(args.files)} files have problems", file=sys.stderr)
    return 2 if bad else 0


def _count(n: int, noun: str) -> str:
    """`1 fault`, `2 faults`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
