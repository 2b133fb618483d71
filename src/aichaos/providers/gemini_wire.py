"""Gemini's words and framing, shared by its dialect and its error answers: finish, filter
and block reasons, `google.rpc.Status` codes and bodies, protobuf durations, and the JSON-array
stream framing (google-genai `types`, provider-wire-formats.md §Gemini)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from aichaos.wire.exchange import Part, Pause
from aichaos.wire.sse import SSEEvent

FILTER_REASONS = ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "OTHER")
"""finishReason values (google-genai `types.FinishReason`) that end an answer as a filter does."""
BLOCK_REASONS = ("SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "JAILBREAK")
"""promptFeedback.blockReason values (google-genai `types.BlockedReason`)."""

MALFORMED_CALL_MESSAGE = "Malformed function call: {name}"

BLOCKED_RATINGS: list[dict[str, Any]] = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]
CITATION = {
    "citationSources": [
        {"startIndex": 0, "endIndex": 128, "uri": "https://example.com/a-published-text"}
    ]
}

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}

STATUS_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}


def json_array(items: Iterable[SSEEvent | Pause]) -> Iterator[Part]:
    """A stream without `alt=sse`: one JSON array, element by element."""
    sep = b"["
    for item in items:
        if isinstance(item, Pause):
            yield item
            continue
        yield sep + item.data.encode() + b"\n"
        sep = b",\r\n"
    yield b"[]" if sep == b"[" else b"]"


def proto_duration(seconds: float) -> str:
    """A google.protobuf.Duration in its JSON form: 0, 3, 6 or 9 fractional digits (`26s`,
    `0.300s`), as the protobuf JSON mapping writes it."""
    nanos = round(max(seconds, 0.0) * 1e9)
    whole, frac = divmod(nanos, 1_000_000_000)
    if not frac:
        return f"{whole}s"
    for digits in (3, 6, 9):
        scale = 10 ** (9 - digits)
        if frac % scale == 0:
            return f"{whole}.{frac // scale:0{digits}d}s"
    return f"{whole}.{frac:09d}s"


def status_body(
    code: int, message: str, status: str | None, details: list[Any] | None
) -> dict[str, Any]:
    """A `google.rpc.Status` error body; `status` defaults to the HTTP code's name."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}
