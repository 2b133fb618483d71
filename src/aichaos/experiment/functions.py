"""User functions named as `module:function` (python targets and python checks), and importing them.

Importing is its own step, after a file is parsed: `sys.path` gets the
experiment's directory and the current one only while the import runs (and,
through `import_paths`, while a run calls the functions), never as a side
effect of reading a file.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator

from aichaos.suggest import nearest

FUNCTION_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def function_spec(value: str) -> str:
    """Validate `module:function` (the module dotted, importable; the function an attribute)."""
    if not FUNCTION_PATTERN.match(value.strip()):
        raise ValueError(f"expected `module:function` (e.g. apps.chat:answer), got {value!r}")
    return value.strip()


FunctionSpec = Annotated[str, AfterValidator(function_spec)]


class FunctionImportError(Exception):
    """A `module:function` that cannot be imported; `expected` and `suggestion` help fix it."""

    def __init__(
        self, message: str, *, expected: str | None = None, suggestion: str | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.expected, self.suggestion = message, expected, suggestion


@contextlib.contextmanager
def import_paths(base_dir: Path) -> Iterator[None]:
    """`module:function` importable from the experiment's directory and the current one,
    inside the block only (entries already on `sys.path` stay where they are)."""
    added = [e for e in (str(Path.cwd()), str(base_dir.resolve())) if e not in sys.path]
    for entry in added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def import_function(spec: str, base_dir: Path) -> Callable[..., Any]:
    """Import `module:function`; raises `FunctionImportError` for every failure (never a
    traceback): a missing module, the module's own error (with where), a missing or
    non-callable attribute."""
    module_name, _, attr = spec.partition(":")
    try:
        with import_paths(base_dir):
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        detail = "" if missing == module_name else f" (it imports {missing!r}, which is missing)"
        raise FunctionImportError(
            f"cannot import module {module_name!r}{detail}",
            expected="a module importable from the experiment's directory or the current one",
        ) from None
    except (Exception, SystemExit) as exc:  # the module's own code failed: say where
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        raise FunctionImportError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}{where}"
        ) from None
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            names = [n for n in dir(value) if not n.startswith("_")]
            raise FunctionImportError(
                f"module {module_name!r} has no attribute {attr!r}",
                suggestion=nearest(part, names),
            )
        value = getattr(value, part)
    if not callable(value):
        raise FunctionImportError(f"{spec} is a {type(value).__name__}, not a function")
    return value  # type: ignore[no-any-return]


__all__ = [
    "FunctionImportError",
    "FunctionSpec",
    "function_spec",
    "import_function",
    "import_paths",
]
