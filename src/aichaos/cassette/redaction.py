"""What of an exchange may be written to a cassette: never a credential.

Request headers are kept only from an allowlist (those that change the answer, such as
`anthropic-version`), so `authorization`, `x-api-key`, `api-key` and `x-goog-api-key`
are never written. Query parameters named like keys (`key=`, `api-key=`, `sig=`, ...) are
dropped. Every other string (bodies, answer headers, query values) goes through
`aichaos.secret_shapes.scrub`, which replaces URL credentials, labelled secrets and
key-shaped strings. Answer headers that carry state (`set-cookie`) or describe the
transfer (`content-length`, `transfer-encoding`, `connection`) are not kept.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from aichaos.secret_shapes import scrub

REQUEST_HEADERS = frozenset(
    {"content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta"}
)
"""Request headers worth keeping: they can change the answer. All others are dropped."""

_DROPPED_ANSWER_HEADERS = frozenset(
    {"set-cookie", "cookie", "content-length", "transfer-encoding", "connection", "keep-alive"}
)
_KEY_PARAMS = frozenset(
    {"key", "api-key", "api_key", "apikey", "access_token", "token", "sig", "signature", "code"}
)


def request_headers(headers: dict[str, str]) -> dict[str, str]:
    """The allowlisted request headers, scrubbed (lower-case names in, as given)."""
    return {k: scrub(v) for k, v in sorted(headers.items()) if k.lower() in REQUEST_HEADERS}


def query(text: str) -> str:
    """The query string without key-like parameters; other values scrubbed."""
    if not text:
        return ""
    pairs = [
        (name, scrub(value))
        for name, value in parse_qsl(text, keep_blank_values=True)
        if name.lower() not in _KEY_PARAMS
    ]
    return urlencode(pairs)


def answer_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The answer's headers in order, without stateful or transfer headers, scrubbed."""
    return [(k, scrub(v)) for k, v in headers if k.lower() not in _DROPPED_ANSWER_HEADERS]


def value(data: Any) -> Any:
    """A JSON value with every string scrubbed and key-named fields blanked."""
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, list):
        return [value(item) for item in data]
    if isinstance(data, dict):
        return {
            k: "[redacted]" if str(k).lower() in _KEY_PARAMS - {"code"} else value(v)
            for k, v in data.items()
        }
    return data


def text(data: bytes) -> bytes:
    """Body bytes scrubbed when they are text; other bytes as they are."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    return scrub(decoded).encode()
