"""`aichaos cassette import FILE.har DIR` and `aichaos cassette show DIR`: cassettes made
elsewhere, and what a cassette holds (see docs/record-replay.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    har = sub.add_parser("import", help="append the exchanges of a HAR file to a cassette")
    har.add_argument("har", type=Path, metavar="FILE.har", help="a HAR file")
    har.add_argument("directory", type=Path, metavar="DIR", help="the cassette directory")
    show = sub.add_parser("show", help="list the exchanges a cassette holds")
    show.add_argument("directory", type=Path, metavar="DIR", help="the cassette directory")


def run(args: argparse.Namespace) -> int:
    from aichaos.cassette import CassetteError, read_cassette_dir
    from aichaos.cassette.har import import_har

    try:
        if args.action == "import":
            count = import_har(args.har, args.directory)
            print(f"imported {count} exchange(s) from {args.har} into {args.directory}")
            return 0
        for interaction in read_cassette_dir(args.directory):
            events = interaction.events
            shape = f"{len(events)} events" if events is not None else "body"
            print(
                f"{interaction.where}: {interaction.method} {interaction.path}"
                f" -> {interaction.status} ({shape}, {interaction.outcome})"
            )
        return 0
    except (CassetteError, OSError) as exc:
        print(f"aichaos cassette: {exc}", file=sys.stderr)
        return 2
