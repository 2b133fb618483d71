"""Carrying out a plan on an upstream answer, chunk by chunk, without any I/O.

`ResponseShaper` is the one implementation of "apply the faults to what the
upstream sent"; the exchange life (`aichaos.exchange.driver.ExchangeLife`) feeds it
bytes as they arrive and turns the parts it returns (bytes, pauses, hangs, aborts) into
actions its interpreters carry out. It also meters what passes (usage, first token) for
the records and rate limiters.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from aichaos.faults.plan import Plan, StreamEdit, StreamOut
from aichaos.providers.base import Delivered, Dialect, EventRole, StreamEnd, Usage
from aichaos.wire.exchange import Abort, Hang, JSONBytes, Part, Pause
from aichaos.wire.jsoncodec import load_json
from aichaos.wire.sse import EventBytes, SSEEvent, SSEParser

_MAX_METERED_BODY = 4 * 1024 * 1024  # non-streaming bodies larger than this are not metered
_TOKEN_ROLES = frozenset({EventRole.TEXT, EventRole.TOOL_START, EventRole.TOOL_ARGS})


class TokenBytes(bytes):
    """Bytes that carry the first token of an answer: the exchange life stamps
    time-to-first-token when it hands them on."""


@dataclass
class Meter:
    """What the shaper saw pass: usage and whether a token was delivered."""

    usage: Usage | None = None
    saw_token: bool = False
    complete: bool = False  # the answer's finish or terminator went through
    ending: StreamEnd | None = None  # the stream's final event went through, or an error event
    deltas: int = 0  # streamed content events, about one token each

    @property
    def tokens(self) -> int:
        """Tokens used: the usage the provider reported; else, for a stream that reports
        none (OpenAI's without `include_usage`), its content deltas."""
        return self.usage.total if self.usage is not None else self.deltas


class _Agreement(StreamEdit):
    """Runs after the faults' edits: events that repeat the answer (Responses' `*.done`
    events, the final response) are made to say what the edited deltas delivered."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect, self.delivered = dialect, Delivered()

    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        self.dialect.note_delivered(event, self.delivered)
        return [self.dialect.event_with_delivered(event, self.delivered)]


def is_event_stream(headers: list[tuple[str, str]]) -> bool:
    """Whether the headers announce a Server-Sent Events stream."""
    for name, value in headers:
        if "event-stream" in value and name.lower() == "content-type":  # (cheaper test first)
            return True
    return False


def _encoding(headers: list[tuple[str, str]]) -> str:
    """The answer's `content-encoding`, lower case (`identity` when none)."""
    for name, value in headers:
        if name.lower() == "content-encoding":
            return value.strip().lower() or "identity"
    return "identity"


def _inflate(decoder: zlib._Decompress, chunk: bytes | None) -> bytes:
    """The next decoded bytes of a compressed stream (`chunk` None: the rest); b"" once the
    data stops making sense (the client decodes it, or fails, on its own)."""
    try:
        return decoder.decompress(chunk) if chunk is not None else decoder.flush()
    except zlib.error:
        return b""


def _without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


class ResponseShaper:
    """Applies a plan's response edits to one upstream answer.

    Usage: construct with the upstream status and headers; if `buffered`, read
    the whole upstream body and call `shape_buffered`; otherwise call `feed`
    with each chunk and `end` after the last, sending the returned parts.
    `status` and `headers` are what to send to the client (read them after
    `shape_buffered` in buffered mode).
    """

    def __init__(self, plan: Plan, status: int, headers: list[tuple[str, str]]) -> None:
        self.plan = plan
        self.status = status
        self.meter = Meter()
        self._ok = 200 <= status < 300
        self._stream = is_event_stream(headers)
        dialect = plan.dialect
        self._dialect = dialect if dialect is not None and dialect.has_completion else None
        self._edits: list[StreamEdit] = []
        if self._ok:
            for header_edit in plan.header_edits:
                headers = header_edit(headers)
        if self._ok and self._stream:
            ctx = plan.context_of(headers)
            self._edits = [factory(ctx) for factory in plan.stream_edit_factories]
            if self._edits and self._dialect is not None and self._dialect.repeats_deltas:
                self._edits.append(_Agreement(self._dialect))
        self.buffered = self._ok and not self._stream and bool(plan.body_edits)
        changes_body = bool(self._edits) or self.buffered or plan.abort_after_bytes is not None
        self.headers = _without(headers, "content-length") if changes_body else list(headers)
        if changes_body:
            # The body no longer matches what the upstream compressed or measured.
            self.headers = _without(self.headers, "content-encoding")
        self._parser = SSEParser() if self._ok and self._stream and self._dialect else None
        # A stream passed through compressed (no edit asked for it plain) is read through a
        # decoder; one compressed in a way the standard library cannot read is not read.
        self._decoder: zlib._Decompress | None = None
        encoding = _encoding(self.headers) if self._parser is not None else "identity"
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header
        elif encoding != "identity":
            self._parser = None
        self._sent = 0
        self._ended = False
        self._body_copy: list[bytes] = []
        self._body_size = 0

    @property
    def sends_event_stream(self) -> bool:
        """Whether the headers to send (`headers`) announce an event stream."""
        if self.plan.header_edits:  # they may have changed the content type
            return is_event_stream(self.headers)
        return self._stream

    @property
    def meters_events(self) -> bool:
        """Whether the answer is a 2xx event stream of a known dialect (its events are read)."""
        return self._parser is not None

    @property
    def ended(self) -> bool:
        """Whether an edit ended the stream early (stop reading the upstream)."""
        return self._ended

    # --- buffered (non-streaming edits) -----------------------------------------
    def shape_buffered(self, body: bytes) -> list[Part]:
        """The whole upstream body (when `buffered`) with the plan's body edits applied, as
        parts to send (bytes, or an `Abort` where `abort_after_bytes` cuts it); sets
        `status` and `headers` (without content-length) to what to send, and meters usage."""
        ctx = self.plan.context
        status, headers = self.status, self.headers
        for edit in self.plan.body_edits:
            status, headers, body = edit(ctx, status, headers, body)
        self.status, self.headers = status, _without(headers, "content-length")
        self._meter_body(body)
        return self._limit([body])

    # --- streaming -------------------------------------------------------------
    def feed(self, chunk: bytes) -> list[Part]:
        """The parts to send for the next chunk of the upstream body (any size, any
        boundary): bytes (a `TokenBytes` when it carries the first token), `Pause`,
        `Hang` or `Abort` from stream edits; [] once the answer has `ended`."""
        if self._ended:
            return []
        if self._parser is None:
            if self._ok and not self._stream:
                self._copy(chunk)
            return self._limit([chunk])
        if not self._edits and isinstance(chunk, EventBytes) and self._parser.idle:
            # An event encoded here (the mock's): metered from the event it was encoded from.
            first_token = self._observe(chunk.event)
            return self._limit([TokenBytes(chunk) if first_token else chunk])
        decoder = self._decoder
        events = self._parser.feed(chunk if decoder is None else _inflate(decoder, chunk))
        if not self._edits:
            # Transparent: forward the bytes exactly as received, only meter the events.
            first_token = False
            for event in events:
                first_token |= self._observe(event)
            return self._limit([TokenBytes(chunk) if first_token else chunk])
        parts: list[Part] = []
        for event in events:
            parts.extend(self._run_edits(event))
            if self._ended:
                break
        return self._limit(parts)

    def end(self) -> list[Part]:
        """The upstream body ended: the parts still to send (an unterminated last event,
        what the edits add at the end, such as a cut stream's error event); [] when called
        again or after an edit ended the answer. Meters a non-streaming body kept aside."""
        if self._ended:
            return []
        self._ended = True
        if self._parser is None:
            copy = self._body_copy
            if copy:
                self._meter_body(copy[0] if len(copy) == 1 else b"".join(copy))
            return []
        if self._decoder is not None:
            for event in self._parser.feed(_inflate(self._decoder, None)):
                self._observe(event)
        rest = self._parser.flush()
        # an unterminated last event, as received (passed through already when transparent)
        parts: list[Part] = [rest] if rest and self._edits else []
        outs: list[StreamOut] = []
        for edit in self._edits:
            outs = [o for out in outs for o in self._through(edit, out)] + edit.on_end()
        parts.extend(self._encode(outs))
        return self._limit(parts)

    # --- internals -------------------------------------------------------------
    def _run_edits(self, event: SSEEvent) -> list[Part]:
        outs: list[StreamOut] = [event]
        for edit in self._edits:
            outs = [o for out in outs for o in self._through(edit, out)]
            if edit.ends_stream:
                self._ended = True
        return self._encode(outs)

    @staticmethod
    def _through(edit: StreamEdit, out: StreamOut) -> list[StreamOut]:
        return edit.on_event(out) if isinstance(out, SSEEvent) else [out]

    def _encode(self, outs: list[StreamOut]) -> list[Part]:
        parts: list[Part] = []
        for out in outs:
            if isinstance(out, SSEEvent):
                data = out.encode()
                parts.append(TokenBytes(data) if self._observe(out) else data)
            else:
                parts.append(out)
        return parts

    def _observe(self, event: SSEEvent) -> bool:
        """Meter one event on its way out; True if it carries the answer's first token."""
        if self._dialect is None or event.comment_only:
            return False
        role = self._dialect.classify(event)  # once per event: this is the hot path
        # `is`, not a set of roles: an Enum's hash is a Python call
        if role is EventRole.TEXT or role is EventRole.TOOL_ARGS:
            self.meter.deltas += 1
        else:  # only non-content events carry usage or the finish
            if role in (EventRole.FINISH, EventRole.TERMINATOR):
                self.meter.complete = True
            ending = self._dialect.stream_end(event, role)
            if ending is not None and self.meter.ending != "error":  # an error event stays
                self.meter.ending = ending
            usage = self._dialect.usage_of_event(event)
            if usage is not None:
                current = self.meter.usage or Usage()
                self.meter.usage = Usage(
                    max(usage.input_tokens, current.input_tokens),
                    max(usage.output_tokens, current.output_tokens),
                )
        if not self.meter.saw_token and role in _TOKEN_ROLES:
            self.meter.saw_token = True
            return True
        return False

    def _copy(self, chunk: bytes) -> None:
        if self._dialect is None or self._body_size > _MAX_METERED_BODY:
            return
        self._body_copy.append(chunk)
        self._body_size += len(chunk)

    def _meter_body(self, body: bytes) -> None:
        if self._dialect is None or not self._ok:
            return
        if isinstance(body, JSONBytes):
            payload = body.value  # encoded here (the mock): no need to parse it back
        else:
            try:
                payload = load_json(body)
            except ValueError:
                return
        self.meter.usage = self._dialect.usage_of_body(payload)
        self.meter.saw_token = self.meter.complete = True

    def _limit(self, parts: list[Part]) -> list[Part]:
        """Cut the body `abort_after_bytes` in, as a connection reset would."""
        limit = self.plan.abort_after_bytes
        if limit is None:
            return parts
        out: list[Part] = []
        for part in parts:
            if not isinstance(part, bytes):
                out.append(part)
                continue
            room = limit - self._sent
            if len(part) < room:
                self._sent += len(part)
                out.append(part)
                continue
            if room > 0:
                out.append(part[:room])
            self._sent = limit
            self._ended = True
            out.append(Abort("reset"))
            break
        return out


__all__ = ["Abort", "Hang", "Meter", "Pause", "ResponseShaper", "TokenBytes"]
