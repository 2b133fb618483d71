"""`{{...}}` templates in http targets and commands.

Variables: `prompt`, `record.FIELD`, `call_id`, `index`, `phase`,
`backends.NAME.url`, `env.NAME` and, in command targets, `port` (a free port chosen
for the app), `python` (the Python interpreter running aichaos) and `files.NAME` (the
path of a rendered `files:` template).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aichaos.faults.spec import unknown_backend
from aichaos.suggest import nearest, suggest

_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
ROOTS = (
    "prompt", "record", "call_id", "index", "phase", "backends", "env", "port", "python", "files"
)  # fmt: skip
COMMAND_ONLY = ("port", "python", "files")
PER_CALL = ("prompt", "record", "call_id", "index", "phase")

Resolver = Callable[[str], Any]


def template_names(value: Any) -> Iterator[str]:
    """Every variable used in a (nested) value's strings."""
    if isinstance(value, str):
        yield from (m.group(1) for m in _TEMPLATE.finditer(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from template_names(key)
            yield from template_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from template_names(item)


def name_problem(
    name: str,
    backends: list[str],
    *,
    allow_port: bool,
    per_call: bool,
    files: Sequence[str] = (),
) -> str | None:
    """Why a template variable is not valid here, or None (`files`: the declared file names)."""
    parts = name.split(".")
    root = parts[0]
    roots = [
        r
        for r in ROOTS
        if (allow_port or r not in COMMAND_ONLY) and (per_call or r not in PER_CALL)
    ]
    if root not in roots:
        hint = nearest(root, roots)
        extra = f" (did you mean {{{{{hint}}}}}?)" if hint else ""
        where = "" if per_call else " here (per-request values only work in http requests)"
        return f"unknown template variable {{{{{name}}}}}{where}{extra}; known: {', '.join(roots)}"
    if root == "backends":
        if len(parts) != 3 or parts[2] != "url":
            return f"write {{{{backends.NAME.url}}}}, got {{{{{name}}}}}"
        unknown = unknown_backend(parts[1], backends)
        if unknown is not None:
            return f"{{{{{name}}}}}: {unknown}"
    if root == "files" and len(parts) == 2 and parts[1] not in files:
        extra = suggest(parts[1], list(files))
        return f"{{{{{name}}}}} names no file under `files:`{extra}"
    if root in ("record", "env", "files") and len(parts) != 2:
        return f"write {{{{{root}.NAME}}}}, got {{{{{name}}}}}"
    if root in ("prompt", "call_id", "index", "phase", "port", "python") and len(parts) != 1:
        return f"{{{{{root}}}}} has no fields, got {{{{{name}}}}}"
    return None


def render(text: str, resolve: Resolver) -> str:
    """Replace every `{{name}}` in `text` with its value (JSON for non-strings)."""

    def one(match: re.Match[str]) -> str:
        value = resolve(match.group(1))
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return _TEMPLATE.sub(one, text)


def render_value(value: Any, resolve: Resolver) -> Any:
    """Render every string in a JSON-like value; a string that is only `{{x}}` keeps x's type."""
    if isinstance(value, str):
        match = _TEMPLATE.fullmatch(value.strip())
        if match:
            return resolve(match.group(1))
        return render(value, resolve)
    if isinstance(value, dict):
        return {render(str(k), resolve): render_value(v, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(item, resolve) for item in value]
    return value


def lookup(name: str, scope: dict[str, Any]) -> Any:
    """Resolve a dotted name in nested dicts; a missing field is an empty string."""
    value: Any = scope
    for part in name.split("."):
        if isinstance(value, dict):
            value = value.get(part, "")
        else:
            return ""
    return value
