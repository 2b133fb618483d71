"""Small helpers shared by the provider modules (ids, header value formats, chunking)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from aichaos.providers._json import as_dict, as_int, as_list, clone
from aichaos.providers.base import Completion
from aichaos.providers.replies import seconds_text

_ids = random.Random()  # seeded from the OS once: ids are unique, not secret


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A random id such as `req_8f3c...`; ids need not be deterministic, only text does.

    Drawn from one generator (no system call per id, on the mock's hot path); `randbytes`
    and `hex` are half the cost of formatting `getrandbits` with a computed width.
    """
    return prefix + _ids.randbytes(nbytes).hex()


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58_id(prefix: str, length: int) -> str:
    """A random id of `length` base58 characters (no 0, O, I or l) after `prefix`, the
    alphabet of Anthropic's ids (`req_011C...`, `toolu_01...`)."""
    return prefix + "".join(_ids.choices(_BASE58, k=length))


def go_duration(seconds: float) -> str:
    """Format like Go's `time.Duration.String()`: `12ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{_trim(secs)}s"


def _trim(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


seconds_header = seconds_text
"""`retry-after` value: an integer string when whole, else a decimal."""


def rfc3339_in(seconds: float) -> str:
    """The UTC instant `seconds` from now as RFC 3339 (`2025-08-21T12:40:59Z`)."""
    when = datetime.now(timezone.utc) + timedelta(seconds=max(seconds, 0.0))
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def chunks_of(completion: Completion) -> list[str]:
    """The stream deltas of a completion's text: explicit chunks, else words with their spaces."""
    if completion.chunks is not None:
        return list(completion.chunks)
    return split_words(completion.text)


def split_words(text: str) -> list[str]:
    if not text:
        return []
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def split_arguments(arguments: str, size: int = 12) -> list[str]:
    """Tool-call JSON arguments cut into stream fragments."""
    if not arguments:
        return [""]
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def parse_arguments(arguments: str) -> Any:
    """Arguments as an object when valid JSON, else the raw (deliberately bad) string."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def dump_arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or a list of typed parts (`text`, `input_text`)."""
    if isinstance(content, str):
        return content
    texts = []
    for part in as_list(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(as_dict(part).get("text"), str):
            texts.append(part["text"])
    return " ".join(texts)


def positive_int(value: Any) -> int | None:
    number = as_int(value)
    return number if number > 0 else None


def name_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def usage_with_output(body: Any, input_key: str, output_key: str, tokens: int) -> Any:
    """A copy of `body` whose `usage` reports `tokens` output tokens, its total in step."""
    new = clone(body)
    usage = as_dict(as_dict(new).get("usage"))
    if usage:
        usage[output_key] = tokens
        usage["total_tokens"] = as_int(usage.get(input_key)) + tokens
    return new


def typed_items(body: Any, key: str, type_: str) -> list[dict[str, Any]]:
    """The objects of the list `body[key]` whose `type` is `type_` (a body's tool calls)."""
    items = (as_dict(item) for item in as_list(as_dict(body).get(key)))
    return [item for item in items if item.get("type") == type_]


def with_typed_items(body: Any, key: str, type_: str, items: list[dict[str, Any]]) -> Any:
    """A copy of `body` whose list `body[key]` ends with `items` instead of its objects of
    type `type_`; `body` itself is never mutated."""
    new = clone(body)
    if not isinstance(new, dict):
        return new
    kept = [item for item in as_list(new.get(key)) if as_dict(item).get("type") != type_]
    new[key] = kept + items
    return new
