"""Keeping secrets out of everything aichaos writes: journals, reports, the console.

Values under secret-looking keys are replaced, and any secret value found in
the environment or the experiment is scrubbed from every string, as are
credentials in URLs and strings shaped like keys (`aichaos.secret_shapes`).
Identifiers that share a key's shape (a W3C `trace_id` is 32 hex characters, like
an Azure key) are kept under their own field names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aichaos.secret_shapes import REDACTED, scrub

SECRET_NAME = re.compile(
    r"(?i)^(proxy-)?(authorization|set-cookie|cookie|x-api-key|x-goog-api-key|api[-_]?key|token|"
    r"((access|auth|api|bearer|session|refresh|id)[-_]?token)|(client[-_]?)?secret|passw(or)?d|"
    r"credentials?|private[-_]?key|[a-z0-9_]*_(api_?key|key|secret|password|token))$"
)
"""Keys (headers, fields, environment variables) whose values are secrets."""
_ENV_SECRET = re.compile(r"(?i)(key|token|secret|passw|credential|auth)")
_IDENTIFIER_NAME = re.compile(r"(?i)^(trace|span|parent[-_]?span)[-_]?id$|^traceparent$")
"""Fields holding W3C Trace Context identifiers: hex, but not secrets."""
_MIN_SECRET = 6


def secrets_from_env(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables whose names look secret."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if _ENV_SECRET.search(k) and len(v) >= _MIN_SECRET}


def secrets_in(value: Any, *, under_secret: bool = False) -> set[str]:
    """String values found under secret-looking keys in a nested structure."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= secrets_in(
                item, under_secret=under_secret or bool(SECRET_NAME.search(str(key)))
            )
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= secrets_in(item, under_secret=under_secret)
    elif isinstance(value, str) and under_secret and len(value) >= _MIN_SECRET:
        found.add(value)
        found.update(word for word in value.split() if len(word) >= _MIN_SECRET)
    return found


class Redactor:
    """Scrubs known secrets and key-shaped strings from text and nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = {s for s in secrets if s and len(s) >= _MIN_SECRET and "{{" not in s}
        # Longest first, so a secret containing another is removed whole.
        ordered = sorted(known, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    @classmethod
    def for_run(cls, spec: Any = None) -> Redactor:
        """Secrets of the environment plus those written in an experiment's spec."""
        return cls(secrets_from_env() | (secrets_in(spec) if spec is not None else set()))

    def text(self, value: str) -> str:
        """The text with known secrets and key-shaped strings replaced."""
        if self._known is not None:
            value = self._known.sub(REDACTED, value)
        return scrub(value)

    def _known_only(self, value: str) -> str:
        return self._known.sub(REDACTED, value) if self._known is not None else value

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data with secret keys' values and secret strings replaced."""
        if isinstance(value, dict):
            return {
                key: REDACTED
                if SECRET_NAME.search(str(key)) and isinstance(item, (str, int, float))
                else self._known_only(item)
                if _IDENTIFIER_NAME.search(str(key)) and isinstance(item, str)
                else self.data(item)
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


__all__ = ["REDACTED", "SECRET_NAME", "Redactor", "secrets_from_env", "secrets_in"]
