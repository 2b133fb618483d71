"""Problems found in an experiment file, reported all at once with file, line, column and key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """`faults[0].window.start` from `("faults", 0, "window", "start")`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def nearest(word: object, candidates: Iterable[str]) -> str | None:
    """The valid word closest to a typo, if any is close enough."""
    if not isinstance(word, str) or not word:
        return None
    options = [c for c in candidates if isinstance(c, str)]
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    found = get_close_matches(word, options, n=1, cutoff=0.6)
    if not found:
        found = get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        found = [lowered[f] for f in found]
    return found[0] if found and found[0] != word else None


@dataclass
class Problem:
    """One mistake in an experiment file."""

    message: str
    path: Path = ()
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    expected: str | None = None
    suggestion: str | None = None

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
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
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
