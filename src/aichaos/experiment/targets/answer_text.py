"""The answer text of an http target, read as its `output:` says, streamed (SSE) or whole.

`output: PATH` (or `{path: PATH}`) is a dotted path in the JSON body; on an SSE answer, in
each event's data, the pieces joined (`end:` names the event that ends the stream).
`output: {format: openai | anthropic | gemini}` reads the answer as that provider's API
sends it, with the provider's own dialect (`aichaos.providers`): the text of each event,
how a complete stream ends (`Dialect.stream_end`: OpenAI `data: [DONE]`, Responses
`response.completed`, Anthropic `message_stop`, Gemini a chunk with `finishReason`) and its
in-band error events. A stream that ends otherwise is a failed call: `stream_incomplete`
or `stream_error_event` (the contract's outcome names), with the text received so far.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aichaos.experiment.target_specs import OutputSpec
from aichaos.providers import get_provider
from aichaos.providers.base import Dialect, EventRole
from aichaos.wire.sse import SSEEvent, SSEParser

_MISSING = object()


def dialects_of(format: str) -> tuple[Dialect, ...]:
    """The dialects whose answers `format` reads: the provider's surfaces that answer with a
    completion, in its order (OpenAI: Chat Completions, then Responses)."""
    return tuple(d for d in get_provider(format).dialects if d.has_completion)


def at_path(value: Any, path: str) -> Any:
    """The value at a dotted path (`choices.0.delta.content`); `_MISSING` when absent."""
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Answer:
    """What was read: the text, and why the call failed although its status was a success."""

    text: str
    error: str | None = None  # `stream_incomplete` or `stream_error_event`
    message: str | None = None


class AnswerReader:
    """Feed the body's chunks as they arrive (`feed`), then `finish` with the content type."""

    def __init__(self, spec: OutputSpec | None) -> None:
        self.spec = spec
        self.chunks: list[bytes] = []
        self.pieces: list[str] = []
        self.ending: str | None = None  # "complete" or "error" once the stream said so
        self.error_text = ""
        self.events = 0
        self._parser: SSEParser | None = None
        self._dialect: Dialect | None = None
        self._streaming: bool | None = None  # decided from the first bytes

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; True when it brought text of the answer (its first token)."""
        self.chunks.append(chunk)
        if self.spec is None:
            return bool(chunk)
        if self._streaming is None:
            start = b"".join(self.chunks).lstrip()
            if not start:
                return False
            self._streaming = start.startswith((b"data:", b"event:", b":", b"id:", b"retry:"))
            if self._streaming:
                self._parser = SSEParser()
                chunk = b"".join(self.chunks)
        if self._parser is None:
            return bool(chunk)  # a whole body: its first bytes are the first output
        before = len(self.pieces)
        for event in self._parser.feed(chunk):
            if not event.comment_only:
                self._event(event)
        return len(self.pieces) > before

    def _event(self, event: SSEEvent) -> None:
        self.events += 1
        spec = self.spec
        assert spec is not None
        if self.ending is not None:
            return  # after the final or error event nothing belongs to the answer
        if spec.path is not None:
            if spec.end is not None and spec.end in (event.event, event.data.strip()):
                self.ending = "complete"
                return
            value = at_path(event.json, spec.path)
            if value is not _MISSING and value is not None:
                self.pieces.append(_as_text(value))
            return
        dialect = self._dialect or self._pick(event)
        text = dialect.event_text(event)
        if text:
            self.pieces.append(text)
        role = dialect.classify(event)
        if role is EventRole.TEXT:
            return
        ending = dialect.stream_end(event, role)
        if ending == "error":
            payload = event.json if isinstance(event.json, dict) else {}
            error = payload.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.error_text = str(message or event.data)[:300]
        if ending is not None:
            self.ending = ending

    def _pick(self, event: SSEEvent) -> Dialect:
        """The format's dialect for this stream (OpenAI: Responses events name their type)."""
        assert self.spec is not None and self.spec.format is not None
        dialects = dialects_of(self.spec.format)
        kind = event.json.get("type") if isinstance(event.json, dict) else None
        responses = isinstance(kind, str) and kind.startswith("response.")
        chosen = dialects[-1] if responses else dialects[0]
        self._dialect = chosen
        return chosen

    def finish(self) -> Answer:
        """The answer once the body ended (not called when the connection failed)."""
        body = b"".join(self.chunks)
        spec = self.spec
        if spec is None:
            return Answer(body.decode("utf-8", "replace"))
        if self._parser is None:
            return Answer(self._whole(body, spec))
        text = "".join(self.pieces)
        if self.ending == "error":
            return Answer(
                text,
                "stream_error_event",
                f"the answer stream sent an error event: {self.error_text}",
            )
        if self.ending is None and (spec.format is not None or spec.end is not None):
            expected = f"`{spec.end}`" if spec.end is not None else self._final_event(spec.format)
            return Answer(
                text,
                "stream_incomplete",
                f"the answer stream ended after {self.events} events without its final event"
                f" ({expected})",
            )
        return Answer(text)

    def _final_event(self, format: str | None) -> str:
        dialect = self._dialect or (dialects_of(format)[0] if format else None)
        return dialect.final_event if dialect is not None else "its final event"

    @staticmethod
    def _whole(body: bytes, spec: OutputSpec) -> str:
        """The text of a whole (not streamed) body: at the path, or by the format's dialect."""
        text = body.decode("utf-8", "replace")
        try:
            payload = json.loads(text)
        except ValueError:
            return text
        if spec.path is not None:
            value = at_path(payload, spec.path)
            return text if value is _MISSING else _as_text(value)
        assert spec.format is not None
        for dialect in dialects_of(spec.format):
            found = dialect.text_of(payload)
            if found:
                return found
        return text if not isinstance(payload, dict) else ""
