""" "Did you mean ...?": the one way every error message suggests the valid word nearest a typo."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


def nearest(word: object, candidates: Iterable[str]) -> str | None:
    """The valid word closest to a typo, if any is close enough (case differences first)."""
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


def did_you_mean(suggestion: str | None) -> str:
    """` (did you mean 'x'?)` for a suggestion, or nothing."""
    return f" (did you mean {suggestion!r}?)" if suggestion else ""


def suggest(word: object, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the nearest candidate, or nothing."""
    return did_you_mean(nearest(word, candidates))


__all__ = ["did_you_mean", "nearest", "suggest"]
