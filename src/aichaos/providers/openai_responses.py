"""OpenAI Responses API (`POST /v1/responses`), streaming with typed `event:` lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from aichaos.providers._common import (
    chunks_of,
    content_text,
    name_or_none,
    new_id,
    positive_int,
    split_arguments,
    typed_items,
    usage_with_output,
    with_typed_items,
)
from aichaos.providers._json import TypedField, as_dict, as_list, clone
from aichaos.providers.base import (
    Completion,
    Delivered,
    Dialect,
    EventRole,
    Finish,
    Prompt,
    StreamEnd,
    Tool,
    ToolCall,
    Usage,
)
from aichaos.wire.exchange import RequestInfo
from aichaos.wire.sse import SSEEvent

_INCOMPLETE: dict[str, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _status(finish: Finish) -> tuple[str, dict[str, Any] | None]:
    reason = _INCOMPLETE.get(finish)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def _usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total,
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _call_item(item_id: str, call: ToolCall, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": arguments,
    }


class Responses(Dialect):
    """The Responses API: output items, `response.*` stream events with sequence numbers."""

    name = "responses"
    default_model = "gpt-4.1"
    final_event = "response.completed"
    repeats_deltas = True  # `*.done` events and the final response repeat the answer
    required_fields = ("model",)

    usage_at = ("usage", "input_tokens", "output_tokens")
    text_field = TypedField(None, "response.output_text.delta", "delta")
    tool_args_field = TypedField(None, "response.function_call_arguments.delta", "delta")
    tool_name_field = TypedField("item", "function_call", "name")

    endpoint = ("POST", "/responses")

    def read_prompt(self, body: dict[str, Any]) -> Prompt:
        raw = body.get("input")
        items = [{"role": "user", "content": raw}] if isinstance(raw, str) else as_list(raw)
        items = [as_dict(i) for i in items]
        users = [i for i in items if i.get("role") == "user"]
        fmt = as_dict(as_dict(body.get("text")).get("format"))
        instructions = body.get("instructions")
        return Prompt(
            last_user=content_text(users[-1].get("content")) if users else "",
            all_text=" ".join(
                [instructions if isinstance(instructions, str) else ""]
                + [content_text(i.get("content")) for i in items]
            ),
            max_tokens=positive_int(body.get("max_output_tokens")),
            tools=[
                Tool(str(t.get("name", "tool")), as_dict(t.get("parameters")))
                for t in map(as_dict, as_list(body.get("tools")))
                if t.get("type") == "function"
            ],
            tool_result_last=bool(items) and items[-1].get("type") == "function_call_output",
            tools_disabled=body.get("tool_choice") == "none",
            forced_tool=name_or_none(as_dict(body.get("tool_choice")).get("name")),
            json_schema=as_dict(fmt.get("schema")) or None,
            json_mode=fmt.get("type") in ("json_object", "json_schema"),
        )

    def _response(
        self,
        req: RequestInfo,
        completion: Completion,
        resp_id: str,
        output: list[dict[str, Any]],
        *,
        final: bool,
    ) -> dict[str, Any]:
        status, incomplete = _status(completion.finish) if final else ("in_progress", None)
        request = req.json_object
        return {
            "id": resp_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": completion.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": request.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": _usage_json(completion.usage) if final else None,
            "user": None,
            "metadata": {},
        }

    def _items(self, completion: Completion) -> list[tuple[str, ToolCall | None]]:
        items: list[tuple[str, ToolCall | None]] = []
        if completion.text or not completion.tool_calls:
            items.append((new_id("msg_"), None))
        items.extend((new_id("fc_"), call) for call in completion.tool_calls)
        return items

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        output = [
            _message_item(item_id, completion.text, "completed")
            if call is None
            else _call_item(item_id, call, call.arguments, "completed")
            for item_id, call in self._items(completion)
        ]
        return self._response(req, completion, new_id("resp_"), output, final=True)

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        seq = 0

        def ev(kind: str, **fields: Any) -> SSEEvent:
            nonlocal seq
            payload = {"type": kind, "sequence_number": seq, **fields}
            seq += 1
            return SSEEvent.of(payload, event=kind)

        resp_id = new_id("resp_")
        yield ev(
            "response.created", response=self._response(req, completion, resp_id, [], final=False)
        )
        yield ev(
            "response.in_progress",
            response=self._response(req, completion, resp_id, [], final=False),
        )
        done: list[dict[str, Any]] = []
        for index, (item_id, call) in enumerate(self._items(completion)):
            if call is None:
                text = completion.text
                pos = {"item_id": item_id, "output_index": index, "content_index": 0}
                yield ev(
                    "response.output_item.added",
                    output_index=index,
                    item={**_message_item(item_id, "", "in_progress"), "content": []},
                )
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield ev("response.content_part.added", **pos, part=part)
                for piece in chunks_of(completion):
                    yield ev("response.output_text.delta", **pos, delta=piece, logprobs=[])
                yield ev("response.output_text.done", **pos, text=text, logprobs=[])
                yield ev("response.content_part.done", **pos, part={**part, "text": text})
                item = _message_item(item_id, text, "completed")
            else:
                yield ev(
                    "response.output_item.added",
                    output_index=index,
                    item=_call_item(item_id, call, "", "in_progress"),
                )
                for fragment in split_arguments(call.arguments):
                    yield ev(
                        "response.function_call_arguments.delta",
                        item_id=item_id,
                        output_index=index,
                        delta=fragment,
                    )
                yield ev(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    arguments=call.arguments,
                )
                item = _call_item(item_id, call, call.arguments, "completed")
            yield ev("response.output_item.done", output_index=index, item=item)
            done.append(item)
        final = self._response(req, completion, resp_id, done, final=True)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield ev(kind, response=final)

    # --- reading --------------------------------------------------------------
    def usage_of_event(self, event: SSEEvent) -> Usage | None:
        return self.usage_of_body(as_dict(event.json).get("response"))

    # --- non-streaming edits --------------------------------------------------
    @staticmethod
    def _text_part(body: Any) -> dict[str, Any] | None:
        for item in as_list(as_dict(body).get("output")):
            if as_dict(item).get("type") == "message":
                for part in as_list(item.get("content")):
                    if as_dict(part).get("type") == "output_text":
                        return part  # type: ignore[no-any-return]
        return None

    def text_of(self, body: Any) -> str:
        part = self._text_part(body)
        text = part.get("text") if part else None
        return text if isinstance(text, str) else ""

    def with_text(self, body: Any, text: str) -> Any:
        new = clone(body)
        part = self._text_part(new)
        if part is not None:
            part["text"] = text
        elif isinstance(new, dict):
            new.setdefault("output", []).insert(0, _message_item(new_id("msg_"), text, "completed"))
        return new

    def with_finish(self, body: Any, finish: Finish, reason: str | None = None) -> Any:
        new = clone(body)
        if isinstance(new, dict):
            new["status"], new["incomplete_details"] = _status(finish)
        return new

    def with_output_tokens(self, body: Any, tokens: int) -> Any:
        return usage_with_output(body, "input_tokens", "output_tokens", tokens)

    def event_with_output_tokens(self, event: SSEEvent, tokens: int) -> SSEEvent:
        payload = as_dict(event.json)
        if not as_dict(payload.get("response")).get("usage"):
            return event
        new = clone(payload)
        new["response"] = self.with_output_tokens(new["response"], tokens)
        return SSEEvent.of(new, event=event.event)

    def tool_calls_of(self, body: Any) -> list[ToolCall]:
        return [
            ToolCall(
                str(item.get("call_id", "")),
                str(item.get("name", "")),
                str(item.get("arguments", "")),
            )
            for item in typed_items(body, "output", "function_call")
        ]

    def with_tool_calls(self, body: Any, calls: list[ToolCall]) -> Any:
        items = [_call_item(new_id("fc_"), c, c.arguments, "completed") for c in calls]
        return with_typed_items(body, "output", "function_call", items)

    # --- stream edits ---------------------------------------------------------
    def classify(self, event: SSEEvent) -> EventRole:
        payload = as_dict(event.json)
        kind = payload.get("type") or event.event
        if kind in ("response.created", "response.in_progress", "response.queued"):
            return EventRole.START
        if kind == "response.output_text.delta":
            return EventRole.TEXT
        if kind == "response.output_item.added":
            item = as_dict(payload.get("item"))
            return EventRole.TOOL_START if item.get("type") == "function_call" else EventRole.OTHER
        if kind == "response.function_call_arguments.delta":
            return EventRole.TOOL_ARGS
        if kind in _TERMINAL:
            return EventRole.FINISH
        return EventRole.OTHER

    def stream_end(self, event: SSEEvent, role: EventRole) -> StreamEnd | None:
        """Final event `response.completed` or `response.incomplete` (a finished answer cut
        by a limit); in-band errors `response.failed` and `error` (provider-wire-formats.md
        §Responses streams). A `[DONE]` after them, if any, changes nothing."""
        kind = as_dict(event.json).get("type") or event.event
        if kind in ("response.completed", "response.incomplete"):
            return "complete"
        if kind in ("response.failed", "error"):
            return "error"
        return None

    def event_with_finish(
        self, event: SSEEvent, finish: Finish, reason: str | None = None
    ) -> SSEEvent:
        payload = clone(event.json)
        if not isinstance(payload, dict) or payload.get("type") not in _TERMINAL:
            return event
        response = as_dict(payload.get("response"))
        status, incomplete = _status(finish)
        response["status"], response["incomplete_details"] = status, incomplete
        kind = "response.completed" if status == "completed" else "response.incomplete"
        payload["type"] = kind
        return SSEEvent.of(payload, event=kind)

    # --- keeping the repeated answer in line with edited deltas ---------------------
    def note_delivered(self, event: SSEEvent, delivered: Delivered) -> None:
        delivered.events += 1
        payload = as_dict(event.json)
        kind = payload.get("type")
        if kind == "response.created":
            delivered.opening = clone(as_dict(payload.get("response")))
        elif kind == "response.content_part.added":
            part = as_dict(payload.get("part"))
            key = f"{payload.get('item_id')}:{payload.get('content_index')}"
            delivered.texts[key] = str(part.get("text") or "")
        elif kind == "response.output_text.delta":
            key = f"{payload.get('item_id')}:{payload.get('content_index')}"
            delivered.texts[key] = delivered.texts.get(key, "") + str(payload.get("delta") or "")
        elif kind == "response.output_item.added":
            item = as_dict(payload.get("item"))
            if item.get("type") == "function_call":
                item_id = str(item.get("id"))
                delivered.tool_names[item_id] = str(item.get("name") or "")
                delivered.tool_arguments[item_id] = str(item.get("arguments") or "")
        elif kind == "response.function_call_arguments.delta":
            item_id = str(payload.get("item_id"))
            so_far = delivered.tool_arguments.get(item_id, "")
            delivered.tool_arguments[item_id] = so_far + str(payload.get("delta") or "")

    def event_with_delivered(self, event: SSEEvent, delivered: Delivered) -> SSEEvent:
        payload = as_dict(event.json)
        if not payload:
            return event
        kind = payload.get("type")
        new = clone(payload)
        # Sequence numbers run on by one through the stream, over dropped or added events.
        new["sequence_number"] = delivered.events - 1
        item_id = str(new.get("item_id"))
        key = f"{item_id}:{new.get('content_index')}"
        if kind == "response.output_text.done" and key in delivered.texts:
            new["text"] = delivered.texts[key]
        elif kind == "response.content_part.done" and key in delivered.texts:
            as_dict(new.get("part"))["text"] = delivered.texts[key]
        elif kind == "response.function_call_arguments.done":
            if item_id in delivered.tool_arguments:
                new["arguments"] = delivered.tool_arguments[item_id]
        elif kind == "response.output_item.done":
            _agree(as_dict(new.get("item")), delivered)
        elif kind in _TERMINAL:
            response = as_dict(new.get("response"))
            if kind == "response.failed" and delivered.opening:
                # A failure made up mid-stream: the response it ends is the one opened.
                new["response"] = response = {**delivered.opening, **response}
            for item in as_list(response.get("output")):
                _agree(as_dict(item), delivered)
        return event if new == payload else SSEEvent.of(new, event=event.event)


def failed_events(type: str, message: str) -> list[SSEEvent]:
    """The two ways a Responses stream fails after it started: an `error` event (flat, as the
    SDK's `ResponseErrorEvent` types it) and the terminal `response.failed` (`status: failed`
    and the error). Sequence numbers are set where the stream's are known
    (`event_with_delivered`)."""
    error = {"code": type, "message": message}
    failed: dict[str, Any] = {
        "object": "response",
        "status": "failed",
        "error": error,
        "incomplete_details": None,
        "output": [],
        "usage": None,
    }
    return [
        SSEEvent.of({"type": "error", **error, "param": None, "sequence_number": 0}, event="error"),
        SSEEvent.of(
            {"type": "response.failed", "sequence_number": 0, "response": failed},
            event="response.failed",
        ),
    ]


_REPEATING = frozenset(
    {
        "response.output_text.done",
        "response.content_part.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        *_TERMINAL,
    }
)


def _agree(item: dict[str, Any], delivered: Delivered) -> None:
    """Make one output item say what the deltas delivered for it."""
    item_id = str(item.get("id"))
    if item.get("type") == "function_call":
        if item_id in delivered.tool_names:
            item["name"] = delivered.tool_names[item_id]
        if item_id in delivered.tool_arguments:
            item["arguments"] = delivered.tool_arguments[item_id]
        return
    for index, part in enumerate(as_list(item.get("content"))):
        key = f"{item_id}:{index}"
        if as_dict(part).get("type") == "output_text" and key in delivered.texts:
            part["text"] = delivered.texts[key]
