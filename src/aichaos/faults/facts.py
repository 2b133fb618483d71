"""Plausible wrong facts for `corrupt_text`: numbers, dates and names swapped for others of the
same kind, so an answer looks right and is wrong (seeded, consistent within one answer)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import date, timedelta

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_ISO_DATE = r"\b\d{4}-\d{2}-\d{2}\b"
_LONG_DATE = r"\b(?:" + "|".join(_MONTHS) + r") \d{1,2}, \d{4}\b"
_NUMBER = r"(?<![\w.\-])\d+(?:\.\d+)?(?!\w)"  # not inside names such as `gpt-4o` or `v1.2`
_DATES = re.compile(f"{_ISO_DATE}|{_LONG_DATE}")
_NUMBERS = re.compile(f"(?P<date>{_ISO_DATE}|{_LONG_DATE})|(?P<number>{_NUMBER})")

PEOPLE = [
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Isabel",
    "James",
    "Julia",
    "Laura",
    "Maria",
    "Michael",
    "Paul",
    "Peter",
    "Sarah",
    "Thomas",
]
CITIES = [
    "Paris",
    "London",
    "Berlin",
    "Madrid",
    "Rome",
    "Tokyo",
    "Sydney",
    "Toronto",
    "Chicago",
    "Boston",
    "Lisbon",
    "Vienna",
    "Dublin",
    "Seattle",
    "Munich",
    "Oslo",
]
_KIND_OF = {name: kind for kind in (PEOPLE, CITIES) for name in kind}
_NAMES = re.compile(r"\b(?:" + "|".join(sorted(_KIND_OF, key=len, reverse=True)) + r")\b")


class FactSwapper:
    """Rewrites facts of one kind (`numbers`, `dates` or `names`) in text, piece by piece."""

    def __init__(self, mode: str, rng: random.Random) -> None:
        self.rng = rng
        self.seen: dict[str, str] = {}  # one replacement per value, for a consistent answer
        pattern, swap = _MODES[mode]
        self.pattern, self.swap = pattern, swap

    def rewrite(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        if match.lastgroup == "date":
            return match.group(0)  # numbers mode leaves dates whole (they stay valid dates)
        value = match.group(0)
        if value not in self.seen:
            self.seen[value] = self.swap(value, self.rng)
        return self.seen[value]


def _other_number(value: str, rng: random.Random) -> str:
    """Another number of the same size and precision (`120` -> `97`, `3.50` -> `4.25`)."""
    whole, _, frac = value.partition(".")
    digits = len(whole)
    low = 10 ** (digits - 1) if digits > 1 else 0
    high = 10**digits - 1
    for _ in range(20):
        new_whole = str(rng.randint(low, high))
        new_frac = "".join(rng.choice("0123456789") for _ in frac)
        candidate = f"{new_whole}.{new_frac}" if frac else new_whole
        if candidate != value:
            return candidate
    return str(int(whole) + 1) + (f".{frac}" if frac else "")


def _other_date(value: str, rng: random.Random) -> str:
    """The date moved by a plausible amount, written the same way."""
    shift = timedelta(days=rng.choice((1, 2, 3, 7, 14, 30, 61, 365)) * rng.choice((-1, 1)))
    if "-" in value:
        year, month, day = map(int, value.split("-"))
        return (date(year, month, day) + shift).isoformat() if _valid(year, month, day) else value
    month_name, rest = value.split(" ", 1)
    day_text, year_text = rest.split(", ")
    month = _MONTHS.index(month_name) + 1
    if not _valid(int(year_text), month, int(day_text)):
        return value
    moved = date(int(year_text), month, int(day_text)) + shift
    return f"{_MONTHS[moved.month - 1]} {moved.day}, {moved.year}"


def _valid(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _other_name(value: str, rng: random.Random) -> str:
    kind = next(k for k in (PEOPLE, CITIES) if value in k)
    return rng.choice([name for name in kind if name != value])


_MODES: dict[str, tuple[re.Pattern[str], Callable[[str, random.Random], str]]] = {
    "numbers": (_NUMBERS, _other_number),
    "dates": (_DATES, _other_date),
    "names": (_NAMES, _other_name),
}
