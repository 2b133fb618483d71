"""`aichaos faults`: every fault kind with its parameters and defaults."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic_core import PydanticUndefined

from aichaos.faults.base import Fault, fault_kinds

_COMMON = set(Fault.model_fields)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", help="show only this kind")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe() -> list[dict[str, Any]]:
    kinds = []
    for name, cls in fault_kinds().items():
        params = []
        for field_name, info in cls.model_fields.items():
            if field_name in _COMMON:
                continue
            default = None if info.default is PydanticUndefined else info.default
            params.append(
                {
                    "name": field_name,
                    "type": _type_name(info.annotation),
                    "default": default,
                    "required": info.is_required(),
                    "description": info.description or "",
                }
            )
        kinds.append({"kind": name, "summary": cls.summary, "parameters": params})
    return kinds


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("Annotated[float, ", "duration[")


def run(args: argparse.Namespace) -> int:
    kinds = describe()
    if args.kind:
        kinds = [k for k in kinds if k["kind"] == args.kind]
        if not kinds:
            from difflib import get_close_matches

            close = get_close_matches(args.kind, [k for k in fault_kinds()], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            print(f"aichaos: unknown fault kind {args.kind!r}{hint}")
            return 2
    if args.json:
        print(json.dumps(kinds, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for kind in kinds:
        table = Table(title=f"[bold]{kind['kind']}[/]: {kind['summary']}", title_justify="left")
        table.add_column("parameter")
        table.add_column("default")
        table.add_column("description")
        for param in kind["parameters"]:
            default = "required" if param["required"] else json.dumps(param["default"], default=str)
            table.add_row(param["name"], default, param["description"])
        if not kind["parameters"]:
            table.add_row("-", "-", "no parameters of its own")
        console.print(table)
    console.print(
        "Every kind also takes the triggers:"
        " backend, probability, first, every, window, ramp, match."
    )
    return 0
