"""`aichaos schema`: the JSON Schema of the experiment format (for editor completion)."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", metavar="PATH", help="write to a file instead")


def run(args: argparse.Namespace) -> int:
    from aichaos.experiment.schema import experiment_json_schema

    text = json.dumps(experiment_json_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        print(text, end="")
    return 0
