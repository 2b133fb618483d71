"""Gemini `generateContent` / `streamGenerateContent` (v1beta and v1): the dialect."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from typing import Any

from aichaos.providers._common import (
    chunks_of,
    content_text,
    dump_arguments,
    new_id,
    parse_arguments,
    positive_int,
)
from aichaos.providers._json import as_dict, as_int, as_list, clone
from aichaos.providers.base import (
    Completion,
    Dialect,
    EventRole,
    Finish,
    FinishWords,
    MalformedToolCall,
    Prompt,
    StreamEnd,
    Tool,
    ToolCall,
    Usage,
)
from aichaos.providers.gemini_wire import (
    BLOCKED_RATINGS,
    CITATION,
    MALFORMED_CALL_MESSAGE,
    json_array,
)
from aichaos.wire.exchange import Part, Pause, RequestInfo
from aichaos.wire.sse import SSEEvent

_PATH = re.compile(r"/models/[^/:]+:(generateContent|streamGenerateContent)$")


def _usage_json(usage: Usage) -> dict[str, Any]:
    # Gemini leaves out the candidates' count when nothing was generated.
    out: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if usage.output_tokens:
        out["candidatesTokenCount"] = usage.output_tokens
    out["totalTokenCount"] = usage.total
    return out


def _call_part(call: ToolCall) -> dict[str, Any] | None:
    """A functionCall part; None when the arguments do not parse: Gemini's `args` is always an
    object, so such a call never reaches the wire (it ends as MALFORMED_FUNCTION_CALL)."""
    args = parse_arguments(call.arguments or "{}")
    if not isinstance(args, dict):
        return None
    return {"functionCall": {"name": call.name, "args": args}}


def _call_parts(calls: list[ToolCall]) -> list[Any]:
    return [part for part in map(_call_part, calls) if part is not None]


def _finish_candidate(candidate: dict[str, Any], word: str) -> None:
    """Set a finish reason with what Gemini sends beside it (ratings, citations)."""
    candidate["finishReason"] = word
    if word == "SAFETY":
        candidate["safetyRatings"] = [dict(r) for r in BLOCKED_RATINGS]
    elif word == "RECITATION":
        candidate["citationMetadata"] = clone(CITATION)
        _set_parts(candidate, [p for p in _parts_of(candidate) if "text" not in as_dict(p)])


def _parts_of(candidate: dict[str, Any]) -> list[Any]:
    return as_list(as_dict(candidate.get("content")).get("parts"))


def _set_parts(candidate: dict[str, Any], parts: list[Any]) -> None:
    """Gemini sends a content without `parts` when there is nothing in it."""
    content = candidate.setdefault("content", {"role": "model"})
    if not isinstance(content, dict):
        return
    if parts:
        content["parts"] = parts
    else:
        content.pop("parts", None)


def _get(data: dict[str, Any], camel: str) -> Any:
    """A request field in camelCase or snake_case: the API accepts both (litellm sends the
    latter)."""
    if camel in data:
        return data[camel]
    return data.get(re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), camel))


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class GenerateContent(Dialect):
    """generateContent and streamGenerateContent; a stream is `data:` chunks, no `[DONE]`."""

    name = "generate_content"
    default_model = "gemini-2.5-flash"
    final_event = "a chunk with finishReason"
    finish_reasons = FinishWords("STOP", "MAX_TOKENS", "SAFETY", "STOP")
    usage_at = ("usageMetadata", "promptTokenCount", "candidatesTokenCount")

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and _PATH.search(path) is not None

    malformed_tool_call: MalformedToolCall = "finish"
    required_fields = ("contents",)
    malformed_tool_call_stream: MalformedToolCall = "finish"

    def read_prompt(self, body: dict[str, Any]) -> Prompt:
        contents = [_d(c) for c in as_list(body.get("contents"))]
        users = [c for c in contents if c.get("role", "user") == "user"]
        config = _d(_get(body, "generationConfig"))
        declarations = [
            _d(f)
            for t in as_list(body.get("tools"))
            for f in as_list(_get(_d(t), "functionDeclarations"))
        ]
        calling = _d(_get(_d(_get(body, "toolConfig")), "functionCallingConfig"))
        allowed = as_list(_get(calling, "allowedFunctionNames"))
        system = _d(_get(body, "systemInstruction"))
        last_parts = as_list(contents[-1].get("parts")) if contents else []
        schema = _get(config, "responseSchema") or _get(config, "responseJsonSchema")
        return Prompt(
            last_user=content_text(users[-1].get("parts")) if users else "",
            all_text=" ".join(
                [content_text(system.get("parts"))]
                + [content_text(c.get("parts")) for c in contents]
            ),
            max_tokens=positive_int(_get(config, "maxOutputTokens")),
            tools=[
                Tool(
                    str(f.get("name", "tool")),
                    _d(f.get("parameters") or _get(f, "parametersJsonSchema")),
                )
                for f in declarations
            ],
            tool_result_last=any(_get(_d(p), "functionResponse") is not None for p in last_parts),
            tools_disabled=calling.get("mode") == "NONE",
            forced_tool=str(allowed[0]) if allowed and allowed[0] else None,
            json_schema=_d(schema) or None,
            json_mode=_get(config, "responseMimeType") == "application/json",
        )

    def tool_call_id(self, rng: random.Random) -> str:
        return f"call_{rng.getrandbits(96):024x}"  # google-genai does not read an id here

    def _chunk(
        self, completion: Completion, parts: list[Any], response_id: str, final: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"index": 0}
        _set_parts(candidate, parts)
        body: dict[str, Any] = {"candidates": [candidate]}
        if final:
            candidate["finishReason"] = self.finish_reasons.of(completion.finish)
            body["usageMetadata"] = _usage_json(completion.usage)
        body["modelVersion"] = completion.model
        body["responseId"] = response_id
        return body

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        parts: list[Any] = []
        if completion.text:
            parts.append({"text": completion.text})
        parts += _call_parts(completion.tool_calls)
        return self._chunk(completion, parts, new_id("", 11), final=True)

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        response_id = new_id("", 11)
        for piece in chunks_of(completion):
            yield SSEEvent.of(self._chunk(completion, [{"text": piece}], response_id, False))
        if completion.tool_calls:
            parts = _call_parts(completion.tool_calls)
            yield SSEEvent.of(self._chunk(completion, parts, response_id, False))
        yield SSEEvent.of(self._chunk(completion, [{"text": ""}], response_id, True))

    def stream_framing(
        self, req: RequestInfo, events: Iterable[SSEEvent | Pause]
    ) -> tuple[str, Iterator[Part]]:
        if "alt=sse" in req.query:
            return super().stream_framing(req, events)
        # Without alt=sse Gemini streams one JSON array, element by element.
        return "application/json", json_array(events)

    # --- reading --------------------------------------------------------------
    def usage_of_event(self, event: SSEEvent) -> Usage | None:
        return self.usage_of_body(event.json)

    @staticmethod
    def _candidate(body: Any) -> dict[str, Any]:
        candidates = as_list(as_dict(body).get("candidates"))
        return as_dict(candidates[0]) if candidates else {}

    def _parts(self, body: Any) -> list[Any]:
        return as_list(as_dict(self._candidate(body).get("content")).get("parts"))

    # --- non-streaming edits --------------------------------------------------
    def text_of(self, body: Any) -> str:
        return "".join(str(p["text"]) for p in self._parts(body) if "text" in as_dict(p))

    def with_text(self, body: Any, text: str) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if not candidate:
            return new
        others = [p for p in _parts_of(candidate) if "text" not in as_dict(p)]
        _set_parts(candidate, [{"text": text}, *others] if text else others)
        return new

    def with_finish(self, body: Any, finish: Finish, reason: str | None = None) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if candidate:
            _finish_candidate(candidate, reason or self.finish_reasons.of(finish))
        return new

    def with_output_tokens(self, body: Any, tokens: int) -> Any:
        new = clone(body)
        meta = as_dict(as_dict(new).get("usageMetadata"))
        if meta:
            prompt = as_int(meta.get("promptTokenCount"))
            meta.clear()
            meta.update(_usage_json(Usage(prompt, tokens)))
        candidate = self._candidate(new)
        if not tokens and candidate:
            # Nothing generated: Gemini's content then has no parts at all.
            _set_parts(candidate, [p for p in _parts_of(candidate) if as_dict(p).get("text")])
        return new

    def with_malformed_tool_call(self, body: Any) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        names = [c.name for c in self.tool_calls_of(body)]
        if candidate and names:
            _set_parts(candidate, [])
            candidate["finishReason"] = "MALFORMED_FUNCTION_CALL"
            candidate["finishMessage"] = MALFORMED_CALL_MESSAGE.format(name=names[0])
            new = self.with_output_tokens(new, 0)
        return new

    def tool_calls_of(self, body: Any) -> list[ToolCall]:
        calls = []
        for part in self._parts(body):
            call = as_dict(as_dict(part).get("functionCall"))
            if call:
                name = str(call.get("name", ""))
                calls.append(
                    ToolCall(str(call.get("id", name)), name, dump_arguments(call.get("args", {})))
                )
        return calls

    def with_tool_calls(self, body: Any, calls: list[ToolCall]) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if not candidate:
            return new
        kept = [p for p in _parts_of(candidate) if "functionCall" not in as_dict(p)]
        _set_parts(candidate, kept + _call_parts(calls))
        return new

    # --- stream edits ---------------------------------------------------------
    def classify(self, event: SSEEvent) -> EventRole:
        payload = event.json
        if not isinstance(payload, dict) or "error" in payload:
            return EventRole.OTHER
        if self._candidate(payload).get("finishReason"):
            return EventRole.FINISH
        parts = self._parts(payload)
        if any("functionCall" in as_dict(p) for p in parts):
            return EventRole.TOOL_START
        if any("text" in as_dict(p) for p in parts):
            return EventRole.TEXT
        if "usageMetadata" in payload:
            return EventRole.USAGE
        return EventRole.OTHER

    def stream_end(self, event: SSEEvent, role: EventRole) -> StreamEnd | None:
        """No terminator: the last chunk carries `finishReason`; in-band error a chunk
        `{"error": {...}}` (provider-wire-formats.md §Gemini streams)."""
        if role is EventRole.FINISH:
            return "complete"
        payload = event.json
        return "error" if isinstance(payload, dict) and "error" in payload else None

    def event_text(self, event: SSEEvent) -> str | None:
        texts = [str(p["text"]) for p in self._parts(event.json) if "text" in as_dict(p)]
        return "".join(texts) if texts else None

    def event_with_text(self, event: SSEEvent, text: str) -> SSEEvent:
        if self.event_text(event) is None:
            return event
        return event.replaced(self.with_text(event.json, text))

    def event_with_finish(
        self, event: SSEEvent, finish: Finish, reason: str | None = None
    ) -> SSEEvent:
        if not self._candidate(event.json):
            return event
        return event.replaced(self.with_finish(event.json, finish, reason))

    def event_with_output_tokens(self, event: SSEEvent, tokens: int) -> SSEEvent:
        if "usageMetadata" not in as_dict(event.json):
            return event
        return event.replaced(self.with_output_tokens(event.json, tokens))

    def event_with_malformed_tool_call(self, event: SSEEvent) -> SSEEvent | None:
        payload = as_dict(event.json)
        candidate = self._candidate(payload)
        if candidate.get("finishReason"):
            new = clone(payload)
            final = self._candidate(new)
            _set_parts(final, [p for p in _parts_of(final) if as_dict(p).get("text")])
            final["finishReason"] = "MALFORMED_FUNCTION_CALL"
            final["finishMessage"] = MALFORMED_CALL_MESSAGE.format(name="the call did not parse")
            return event.replaced(new)
        if any("functionCall" in as_dict(p) for p in _parts_of(candidate)):
            new = clone(payload)
            kept = [p for p in _parts_of(self._candidate(new)) if "functionCall" not in as_dict(p)]
            if not kept:
                return None
            _set_parts(self._candidate(new), kept)
            return event.replaced(new)
        return event

    def _call_edit(self, event: SSEEvent, key: str, value: Any) -> SSEEvent:
        payload = clone(event.json)
        candidate = self._candidate(payload)
        for index, part in enumerate(_parts_of(candidate)):
            call = as_dict(part).get("functionCall")
            if isinstance(call, dict):
                if key == "args" and not isinstance(value, dict):
                    # Unparseable arguments never reach the wire: the call goes away.
                    parts = _parts_of(candidate)
                    _set_parts(candidate, parts[:index] + parts[index + 1 :])
                else:
                    call[key] = value
                return event.replaced(payload)
        return event

    def event_tool_args(self, event: SSEEvent) -> str | None:
        # Gemini sends a call's arguments whole, with the call (a TOOL_START event).
        for part in self._parts(event.json):
            call = as_dict(part).get("functionCall")
            if isinstance(call, dict):
                return dump_arguments(call.get("args", {}))
        return None

    def event_with_tool_name(self, event: SSEEvent, name: str) -> SSEEvent:
        return self._call_edit(event, "name", name)

    def event_with_tool_args(self, event: SSEEvent, arguments: str) -> SSEEvent:
        # Gemini sends arguments whole, as an object.
        return self._call_edit(event, "args", parse_arguments(arguments or "{}"))

    def keepalive_event(self) -> SSEEvent | None:
        return None  # Google sends no keep-alive; google-genai parses every line as JSON
