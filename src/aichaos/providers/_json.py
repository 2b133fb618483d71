"""Reading and editing provider JSON without trusting its shape: a value that is not the
expected object or list reads as empty, and edits work on copies."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from aichaos.wire.sse import SSEEvent


def clone(value: Any) -> Any:
    """Deep copy, so edits never mutate their input."""
    return copy.deepcopy(value)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def typed_text(value: Any, type_: str, key: str) -> str | None:
    """`value[key]` when `value` is an object whose `type` is `type_` and it is a string."""
    obj = as_dict(value)
    text = obj.get(key) if obj.get("type") == type_ else None
    return text if isinstance(text, str) else None


def with_typed_text(event: SSEEvent, at: str | None, type_: str, key: str, text: str) -> SSEEvent:
    """`event` with `key` set to `text` in its JSON's object `at` (None: the JSON itself) when
    that object's `type` is `type_`; else `event` unchanged. Its JSON is never mutated."""
    payload = clone(event.json)
    obj = as_dict(payload if at is None else as_dict(payload).get(at))
    if obj.get("type") != type_:
        return event
    obj[key] = text
    return event.replaced(payload)


@dataclass(frozen=True)
class TypedField:
    """Where typed stream events carry one value: under `key` in the event JSON's object `at`
    (None: the JSON itself) when that object's `type` is `type` (Anthropic's text deltas:
    `delta` of type `text_delta`, key `text`)."""

    at: str | None
    type: str
    key: str

    def read(self, event: SSEEvent) -> str | None:
        payload = as_dict(event.json)
        return typed_text(payload if self.at is None else payload.get(self.at), self.type, self.key)

    def write(self, event: SSEEvent, value: str) -> SSEEvent:
        """`event` with the value replaced (its JSON is never mutated); else unchanged."""
        return with_typed_text(event, self.at, self.type, self.key, value)
