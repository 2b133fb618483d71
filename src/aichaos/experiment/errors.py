"""Problems found in an experiment file, reported all at once with file, line, column and key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aichaos.faults.spec import UnknownBackend
from aichaos.suggest import did_you_mean

KeyPath = tuple[str | int, ...]
"""Where a value sits in the file: `("faults", 0, "window", "start")`."""


def format_path(path: KeyPath) -> str:
    """`faults[0].window.start` from `("faults", 0, "window", "start")`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


@dataclass
class Problem:
    """One mistake in an experiment file."""

    message: str
    path: KeyPath = ()
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    expected: str | None = None
    suggestion: str | None = None
    # a reading of a value the schema also refuses that knows more (the experiment's own
    # names): shown in the schema's place (`rawchecks.merge`)
    replaces: bool = False

    def format(self) -> str:
        """One line: `file:line:column: key.path: message; expected ... (did you mean ...?)`."""
        where = self.file or "<experiment>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {format_path(self.path)}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        text += did_you_mean(self.suggestion)
        return text

    def to_dict(self) -> dict[str, object]:
        """The problem as JSON-ready data."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "message": self.message,
            "expected": self.expected,
            "suggestion": self.suggestion,
        }


class ExperimentError(Exception):
    """An experiment cannot be run as written (exit code 2). Holds every problem found."""

    def __init__(self, problems: Sequence[Problem] | str, *, file: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, file=file)]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.format())

    def format(self) -> str:
        """Every problem on its own line, sorted by position."""
        ordered = sorted(
            self.problems, key=lambda p: (p.file or "", p.line or 0, p.column or 0, p.message)
        )
        return "\n".join(problem.format() for problem in ordered)


def unknown_backend_problem(
    path: KeyPath, unknown: UnknownBackend, *, wildcard: bool = False
) -> Problem:
    """The experiment file's words for `faults.spec.unknown_backend`'s finding at `path`
    (`wildcard`: `*` may be written there too)."""
    return Problem(
        f"no backend is named {unknown.name!r}",
        path,
        expected="one of " + ", ".join([*unknown.known, *(["*"] if wildcard else [])]),
        suggestion=unknown.nearest,
    )
