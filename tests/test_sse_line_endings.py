"""The SSE parser ends an event on any line ending the spec allows, mixed ones included.

WHATWG HTML, "Server-sent events", parsing an event stream: a line ends with CRLF, LF or CR,
and an empty line dispatches the event.
"""

from __future__ import annotations

import pytest

from aichaos.wire.sse import SSEParser

ENDINGS = [b"\n", b"\r\n", b"\r"]
# CR then LF is one CRLF, not two endings.
PAIRS = [(a, b) for a in ENDINGS for b in ENDINGS if (a, b) != (b"\r", b"\n")]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_any_two_line_endings_end_an_event(first: bytes, second: bytes) -> None:
    stream = b"event: a" + first + b"data: 1" + first + second + b"data: 2" + first + second
    parser = SSEParser()
    events = parser.feed(stream + b"data: 3")  # a last event without its blank line
    assert [(e.event, e.data) for e in events] == [("a", "1"), (None, "2")]
    assert b"".join(e.encode() for e in events) == stream  # raw bytes kept for forwarding
    assert parser.flush() == b"data: 3"


def test_byte_by_byte_with_a_split_crlf() -> None:
    """A CR at the end of what arrived may be half a CRLF: the parser waits for the next byte."""
    stream = b"data: a\r\n\r\ndata: b\r\r\ndata: c\n\r\n"
    parser = SSEParser()
    events = [e for byte in stream for e in parser.feed(bytes([byte]))]
    assert [e.data for e in events] == ["a", "b", "c"]
    assert b"".join(e.raw or b"" for e in events) == stream
    assert parser.flush() == b""


def test_comments_and_lf_only_streams_are_unchanged() -> None:
    parser = SSEParser()
    events = parser.feed(b': keep-alive\n\ndata: {"x": 1}\n\n')
    assert [e.comment_only for e in events] == [True, False]
    assert events[1].json == {"x": 1}
