"""Incremental Server-Sent Events parsing and encoding.

The parser keeps each event's raw bytes so that events nobody changed are
forwarded byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

from aichaos.wire.exchange import ParsedOnce, compact_json

__all__ = [
    "EventBytes",
    "SSEEvent",
    "SSEParser",
    "comment",
    "compact_json",
    "encode_basestring_ascii",
]


@dataclass
class SSEEvent(ParsedOnce):
    """One SSE event. `raw` is the exact bytes received, blank line included."""

    data: str = ""
    event: str | None = None
    raw: bytes | None = None
    comment_only: bool = False
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def _json_text(self) -> str:
        return self.data  # not JSON: `[DONE]`, comments

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.event is None and "\n" not in self.data:
            return f"data: {self.data}\n\n".encode()
        lines = []
        if self.event is not None:
            lines.append(f"event: {self.event}")
        for line in self.data.split("\n"):
            lines.append(f"data: {line}")
        return ("\n".join(lines) + "\n\n").encode()

    @classmethod
    def of(cls, payload: Any, event: str | None = None) -> SSEEvent:
        """A new event whose data is `payload` as compact JSON (or a string as is)."""
        data = payload if isinstance(payload, str) else compact_json(payload)
        ev = cls(data=data, event=event)
        if not isinstance(payload, str):
            ev._json, ev._parsed = payload, True
        return ev

    def replaced(self, payload: Any) -> SSEEvent:
        """The same event type with new JSON data (re-encoded, no longer raw)."""
        return SSEEvent.of(payload, self.event)


class EventBytes(bytes):
    """One event encoded here (the mock's streams): its readers (metering) take `event`
    instead of parsing the bytes back, as `JSONBytes` does for a whole body."""

    event: SSEEvent

    @classmethod
    def of(cls, event: SSEEvent) -> EventBytes:
        data = cls(event.encode())
        data.event = event
        return data


def comment(text: str = "keep-alive") -> SSEEvent:
    return SSEEvent(raw=f": {text}\n\n".encode(), comment_only=True)


class SSEParser:
    """Feed bytes as they arrive; get complete events back.

    Handles the line endings the SSE spec allows (CRLF, LF, CR, mixed) and comments.
    Bytes after the last blank line stay buffered until more arrive (`flush` returns
    them at the end, as real clients would lose them).
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else bytes(chunk)
        if b"\r" not in buffer:  # the common case (LF only): every event ends at a blank line
            events: list[SSEEvent] = []
            start = 0
            while (end := buffer.find(b"\n\n", start)) >= 0:
                events.append(_parse_lf_event(buffer[start : end + 2]))
                start = end + 2
            self._buffer = buffer[start:]
            return events
        self._buffer = buffer
        events = []
        while True:
            cut, sep_len = _find_event_end(self._buffer)
            if cut < 0:
                return events
            raw = self._buffer[: cut + sep_len]
            self._buffer = self._buffer[cut + sep_len :]
            events.append(_parse_event(raw))

    @property
    def idle(self) -> bool:
        """Whether no part of an event is waiting for the rest of it."""
        return not self._buffer

    def flush(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest


# Two line endings in a row end an event; a line ends with CRLF, LF or CR (mixed ones too).
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


def _find_event_end(buffer: bytes) -> tuple[int, int]:
    """Where the first complete event ends: (start of its line endings, their length)."""
    idx = buffer.find(b"\n\n")
    if b"\r" not in (buffer[:idx] if idx >= 0 else buffer):
        return idx, 2 if idx >= 0 else 0  # the common case (LF only), without the regex
    match = _EVENT_END.search(buffer)
    if match is None:
        return -1, 0
    if match.end() == len(buffer) and buffer.endswith(b"\r"):
        return -1, 0  # a CR last may be the first half of a CRLF: wait for the next byte
    return match.start(), match.end() - match.start()


def _parse_lf_event(raw: bytes) -> SSEEvent:
    """`_parse_event` for an event with no CR in it."""
    if raw.startswith(b"data: ") and raw.find(b"\n", 6) == len(raw) - 2:  # one data line
        return SSEEvent(data=raw[6:-2].decode("utf-8", errors="replace"), raw=raw)
    return _parse_event(raw)


def _parse_event(raw: bytes) -> SSEEvent:
    one_line = raw.count(b"\n") == 2 and raw.endswith(b"\n\n") and b"\r" not in raw
    if one_line and raw.startswith(b"data: "):  # the common case, read at once
        return SSEEvent(data=raw[6:-2].decode("utf-8", errors="replace"), raw=raw)
    text = raw.decode("utf-8", errors="replace")
    event: str | None = None
    data_lines: list[str] = []
    saw_field = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        saw_field = True
        if name == "event":
            event = value
        elif name == "data":
            data_lines.append(value)
    return SSEEvent(data="\n".join(data_lines), event=event, raw=raw, comment_only=not saw_field)
