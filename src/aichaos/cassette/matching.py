"""Which recorded exchange answers a request.

A request matches a recording on its method, path, whether it streams, its model, and the
conversation: the JSON body without the fields that change from run to run
(`DEFAULT_IGNORE`, or a backend's own `replay_ignore` list). The query string is not
compared (it holds API versions and keys). Recordings of the same request are replayed in
the order they were recorded, then again from the first.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aichaos.cassette import redaction
from aichaos.cassette.format import Interaction
from aichaos.wire.exchange import RequestInfo

DEFAULT_IGNORE: tuple[str, ...] = (
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "request_id",
    "id",
    "created",
    "timestamp",
)
"""Top-level body fields left out of the comparison by default: options that do not change
the answer's content, and ids and times that differ on every run."""


@dataclass(frozen=True)
class RequestKey:
    """What two requests must share to be answered alike."""

    method: str
    path: str
    stream: bool
    model: str | None
    conversation: str  # canonical JSON of the body without ignored fields

    def describe(self) -> str:
        model = f" model {self.model}" if self.model else ""
        stream = " (stream)" if self.stream else ""
        return f"{self.method} {self.path}{model}{stream}"


def _model(path: str, body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return str(body["model"])
    for marker in ("/models/", "/deployments/"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[0].split(":", 1)[0] or None
    return None


def _stream(path: str, body: Any) -> bool:
    return (isinstance(body, dict) and body.get("stream") is True) or (
        ":streamGenerateContent" in path
    )


def key_of(method: str, path: str, body: Any, ignore: Iterable[str]) -> RequestKey:
    skip = set(ignore) | {"stream"}
    kept = {k: v for k, v in body.items() if k not in skip} if isinstance(body, dict) else body
    return RequestKey(
        method=method.upper(),
        path=path.split("?", 1)[0],
        stream=_stream(path, body),
        model=_model(path, body),
        conversation=json.dumps(kept, sort_keys=True, separators=(",", ":")),
    )


def key_of_request(info: RequestInfo, ignore: Iterable[str]) -> RequestKey:
    """The request's key, its body redacted as a recording's is (a prompt that held a
    key-shaped string was recorded with `[redacted]` in its place)."""
    body: Any = info.json
    if body is None and info.body:
        body = info.body.decode("utf-8", "replace")
    return key_of(info.method, info.path, redaction.value(body), ignore)


def key_of_interaction(interaction: Interaction, ignore: Iterable[str]) -> RequestKey:
    return key_of(interaction.method, interaction.path, interaction.request_body, ignore)


class Matcher:
    """Finds the recording for a request; thread-safe (its per-request cursors are shared)."""

    def __init__(self, interactions: list[Interaction], ignore: Iterable[str] = DEFAULT_IGNORE):
        self.ignore = tuple(ignore)
        self._by_key: dict[RequestKey, list[Interaction]] = {}
        for interaction in interactions:
            self._by_key.setdefault(key_of_interaction(interaction, self.ignore), []).append(
                interaction
            )
        self._next: dict[RequestKey, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(found) for found in self._by_key.values())

    def find(self, info: RequestInfo) -> Interaction | None:
        key = key_of_request(info, self.ignore)
        found = self._by_key.get(key)
        if not found:
            return None
        with self._lock:
            index = self._next.get(key, 0)
            self._next[key] = (index + 1) % len(found)
        return found[index]

    def closest(self, info: RequestInfo) -> tuple[RequestKey, str] | None:
        """The recorded request most like `info`, and how they differ; None when empty."""
        key = key_of_request(info, self.ignore)
        best: RequestKey | None = None
        best_score = -1.0
        for recorded in self._by_key:
            score = _likeness(key, recorded)
            if score > best_score:
                best, best_score = recorded, score
        if best is None:
            return None
        return best, _difference(key, best)


def _likeness(a: RequestKey, b: RequestKey) -> float:
    same = sum((a.method == b.method, a.path == b.path, a.stream == b.stream, a.model == b.model))
    text = difflib.SequenceMatcher(None, a.conversation[:4000], b.conversation[:4000]).ratio()
    return same + text


def _difference(a: RequestKey, b: RequestKey) -> str:
    differs = [
        name
        for name in ("method", "path", "stream", "model", "conversation")
        if getattr(a, name) != getattr(b, name)
    ]
    if differs == ["conversation"]:
        fields = _differing_fields(a.conversation, b.conversation)
        if fields:
            return "differs in body field(s) " + ", ".join(fields)
    return "differs in " + ", ".join(differs)


def _differing_fields(a: str, b: str) -> list[str]:
    left, right = json.loads(a), json.loads(b)
    if not isinstance(left, dict) or not isinstance(right, dict):
        return []
    return sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
