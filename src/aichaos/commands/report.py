"""`aichaos report JOURNAL [--html P] [--markdown P]`: render a journal from `run --journal`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", metavar="JOURNAL", help="a journal written by `aichaos run`")
    parser.add_argument("--html", metavar="P", help="write an HTML report")
    parser.add_argument("--markdown", metavar="P", help="write a Markdown summary")


def load(path: str, command: str) -> dict[str, object] | None:
    """A journal file's data, or None after printing why it cannot be read (exit 2)."""
    import json

    from aichaos.report.journal import read_journal

    try:
        journal = read_journal(path)
    except FileNotFoundError:
        print(f"aichaos {command}: {path}: no such file", file=sys.stderr)
        return None
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"aichaos {command}: {path}: not an aichaos journal ({exc})", file=sys.stderr)
        return None
    if not isinstance(journal, dict) or journal.get("format") != "aichaos-journal":
        print(f"aichaos {command}: {path}: not an aichaos journal", file=sys.stderr)
        return None
    return journal


def run(args: argparse.Namespace) -> int:
    journal = load(args.journal, "report")
    if journal is None:
        return 2
    from aichaos.report.markdown import render_markdown

    markdown = render_markdown(journal)
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    if args.html:
        from aichaos.report.html import render_html

        Path(args.html).write_text(render_html(journal), encoding="utf-8")
    if not args.markdown and not args.html:
        print(markdown, end="")
    return 0
