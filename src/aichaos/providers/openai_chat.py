"""OpenAI Chat Completions (`/v1/chat/completions`, Azure `/openai/deployments/{d}/...`)."""

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
    usage_with_output,
)
from aichaos.providers._json import as_dict, as_list, clone
from aichaos.providers.base import (
    Completion,
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
from aichaos.wire.sse import SSEEvent, encode_basestring_ascii


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _head(kind: str, completion: Completion) -> dict[str, Any]:
    """The fields a completion and each of its chunks begin with; `kind` is the `object`."""
    return {
        "id": new_id("chatcmpl-"),
        "object": kind,
        "created": int(time.time()),
        "model": completion.model,
        "system_fingerprint": "fp_aichaos",
    }


def azure_filter_results(filtered: bool) -> dict[str, Any]:
    """Azure's per-category content filter annotations; `violence` trips when filtered."""
    safe = {"filtered": False, "severity": "safe"}
    return {
        "hate": dict(safe),
        "self_harm": dict(safe),
        "sexual": dict(safe),
        "violence": {"filtered": True, "severity": "medium"} if filtered else dict(safe),
    }


def _tool_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


_TEXT_ENDINGS = ('"finish_reason":null}]}', '"finish_reason":null}],"usage":null}')
"""How a one-choice chunk ends, as OpenAI encodes it (compact), when it finishes nothing."""


def _plain_text_delta(data: str) -> bool:
    """Whether a chunk is certainly a text delta of its one choice: `classify` says TEXT for
    it. Keys are matched with their quotes, which JSON escapes inside strings, so text never
    matches them; anything less certain (other spacing, several choices) is parsed."""
    return (
        data.startswith('{"')
        and '"delta":{"content":"' in data
        and data.count('"finish_reason":') == 1
        and '"tool_calls"' not in data  # keys of events that are not plain text deltas
        and '"role"' not in data
        and '"error"' not in data
        and '"usage":{' not in data
        and '"function_call"' not in data
    )


class ChatCompletions(Dialect):
    """Chat Completions; `azure=True` adds Azure's content filter annotations."""

    name = "chat_completions"
    default_model = "gpt-4o-mini"
    final_event = "data: [DONE]"
    usage_at = ("usage", "prompt_tokens", "completion_tokens")

    def __init__(self, *, azure: bool = False) -> None:
        self.azure = azure
        # Azure names the deployment in the path instead of a `model`.
        self.required_fields = ("messages",) if azure else ("model", "messages")

    endpoint = ("POST", "/chat/completions")

    def read_prompt(self, body: dict[str, Any]) -> Prompt:
        messages = [as_dict(m) for m in as_list(body.get("messages"))]
        texts: list[str] = []
        last_user = ""
        for message in messages:
            text = content_text(message.get("content"))
            texts.append(text)
            if message.get("role") == "user":
                last_user = text
        # The optional fields are read only when present (the mock's hot path: most
        # requests have none of them).
        tools, choice, fmt = body.get("tools"), body.get("tool_choice"), body.get("response_format")
        fmt = as_dict(fmt) if fmt else {}
        return Prompt(
            last_user=last_user,
            all_text=" ".join(texts),
            max_tokens=positive_int(body.get("max_completion_tokens"))
            or positive_int(body.get("max_tokens")),
            tools=[
                Tool(
                    str(as_dict(t.get("function")).get("name", "tool")),
                    as_dict(as_dict(t.get("function")).get("parameters")),
                )
                for t in map(as_dict, as_list(tools))
                if t.get("type", "function") == "function"
            ]
            if tools
            else [],
            tool_result_last=bool(messages) and messages[-1].get("role") in ("tool", "function"),
            tools_disabled=choice == "none",
            forced_tool=name_or_none(as_dict(as_dict(choice).get("function")).get("name"))
            if choice
            else None,
            json_schema=as_dict(as_dict(fmt.get("json_schema")).get("schema")) or None
            if fmt
            else None,
            json_mode=fmt.get("type") in ("json_object", "json_schema"),
        )

    # --- rendering ------------------------------------------------------------
    def render(self, req: RequestInfo, completion: Completion) -> Any:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": completion.text if completion.text or not completion.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if completion.tool_calls:
            message["tool_calls"] = [_tool_json(c) for c in completion.tool_calls]
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reasons.of(completion.finish),
        }
        body: dict[str, Any] = {
            **_head("chat.completion", completion),
            "service_tier": "default",
            "choices": [choice],
            "usage": usage_json(completion.usage),
        }
        if self.azure:
            choice["content_filter_results"] = azure_filter_results(
                completion.finish == "content_filter"
            )
            body["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": azure_filter_results(False)}
            ]
        return body

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        options = as_dict(req.json_object.get("stream_options"))
        include_usage = options.get("include_usage") is True
        base = _head("chat.completion.chunk", completion)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> SSEEvent:
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish,
            }
            if self.azure and finish == "content_filter":
                choice["content_filter_results"] = azure_filter_results(True)
            payload = {**base, "choices": [choice]}
            if include_usage:
                payload["usage"] = None
            return SSEEvent.of(payload)

        if self.azure:
            # Azure opens with a prompt-annotation chunk whose `choices` is empty.
            yield SSEEvent.of(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": azure_filter_results(False)}
                    ],
                }
            )
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        # Text deltas differ only in their text: the rest of the chunk is encoded once.
        head, _, tail = chunk({"content": ""}).data.partition('{"content":""}')
        for piece in chunks_of(completion):
            yield SSEEvent(data=f'{head}{{"content":{encode_basestring_ascii(piece)}}}{tail}')
        for index, call in enumerate(completion.tool_calls):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for fragment in split_arguments(call.arguments):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield chunk({}, self.finish_reasons.of(completion.finish))
        if include_usage:
            yield SSEEvent.of({**base, "choices": [], "usage": usage_json(completion.usage)})
        yield SSEEvent.of("[DONE]")

    # --- reading --------------------------------------------------------------
    def usage_of_event(self, event: SSEEvent) -> Usage | None:
        if not event.data.lstrip().startswith("{"):
            return None  # not an object (`[DONE]`): no usage, and no JSON to parse
        return self.usage_of_body(event.json)

    # --- non-streaming edits --------------------------------------------------
    @staticmethod
    def _message(body: Any) -> dict[str, Any]:
        choices = as_list(as_dict(body).get("choices"))
        return as_dict(as_dict(choices[0]).get("message")) if choices else {}

    def text_of(self, body: Any) -> str:
        content = self._message(body).get("content")
        return content if isinstance(content, str) else ""

    def with_text(self, body: Any, text: str) -> Any:
        new = clone(body)
        message = self._message(new)
        if message:
            message["content"] = text
        return new

    def with_finish(self, body: Any, finish: Finish, reason: str | None = None) -> Any:
        new = clone(body)
        for choice in as_list(as_dict(new).get("choices")):
            if isinstance(choice, dict):
                choice["finish_reason"] = self.finish_reasons.of(finish)
                if self.azure and finish == "content_filter":
                    choice["content_filter_results"] = azure_filter_results(True)
        return new

    def with_output_tokens(self, body: Any, tokens: int) -> Any:
        return usage_with_output(body, "prompt_tokens", "completion_tokens", tokens)

    def event_with_output_tokens(self, event: SSEEvent, tokens: int) -> SSEEvent:
        if not isinstance(as_dict(event.json).get("usage"), dict):
            return event
        return event.replaced(self.with_output_tokens(event.json, tokens))

    def tool_calls_of(self, body: Any) -> list[ToolCall]:
        calls = []
        for raw in as_list(self._message(body).get("tool_calls")):
            function = as_dict(as_dict(raw).get("function"))
            calls.append(
                ToolCall(
                    id=str(as_dict(raw).get("id", "")),
                    name=str(function.get("name", "")),
                    arguments=str(function.get("arguments", "")),
                )
            )
        return calls

    def with_tool_calls(self, body: Any, calls: list[ToolCall]) -> Any:
        new = clone(body)
        message = self._message(new)
        if message:
            if calls:
                message["tool_calls"] = [_tool_json(c) for c in calls]
            else:
                message.pop("tool_calls", None)
        return new

    # --- stream edits ---------------------------------------------------------
    @staticmethod
    def _delta(payload: Any) -> dict[str, Any] | None:
        choices = as_list(as_dict(payload).get("choices"))
        if not choices or not isinstance(choices[0], dict):
            return None
        delta = choices[0].get("delta")
        return delta if isinstance(delta, dict) else None

    def classify(self, event: SSEEvent) -> EventRole:
        data = event.data
        if data.endswith(_TEXT_ENDINGS) and _plain_text_delta(data):
            return EventRole.TEXT  # most events of a stream: read without parsing the JSON
        if data.strip() == "[DONE]":
            return EventRole.TERMINATOR
        payload = event.json
        if not isinstance(payload, dict) or "error" in payload:
            return EventRole.OTHER
        choices = as_list(payload.get("choices"))
        if not choices:
            return EventRole.USAGE if isinstance(payload.get("usage"), dict) else EventRole.OTHER
        if as_dict(choices[0]).get("finish_reason"):
            return EventRole.FINISH
        delta = self._delta(payload) or {}
        tool_calls = as_list(delta.get("tool_calls"))
        if tool_calls:
            first = as_dict(tool_calls[0])
            if first.get("id") or as_dict(first.get("function")).get("name"):
                return EventRole.TOOL_START
            return EventRole.TOOL_ARGS
        if "role" in delta:
            return EventRole.START
        if isinstance(delta.get("content"), str):
            return EventRole.TEXT
        return EventRole.OTHER

    def stream_end(self, event: SSEEvent, role: EventRole) -> StreamEnd | None:
        """Final event `data: [DONE]`; in-band error `data: {"error": {...}}` (the openai SDK
        raises `APIError` on it; provider-wire-formats.md §OpenAI streams)."""
        if role is EventRole.TERMINATOR:
            return "complete"
        payload = event.json
        return "error" if isinstance(payload, dict) and "error" in payload else None

    def event_text(self, event: SSEEvent) -> str | None:
        content = (self._delta(event.json) or {}).get("content")
        return content if isinstance(content, str) else None

    def event_with_text(self, event: SSEEvent, text: str) -> SSEEvent:
        payload = clone(event.json)
        delta = self._delta(payload)
        if delta is None:
            return event
        delta["content"] = text
        return event.replaced(payload)

    def event_with_finish(
        self, event: SSEEvent, finish: Finish, reason: str | None = None
    ) -> SSEEvent:
        payload = clone(event.json)
        choices = as_list(as_dict(payload).get("choices"))
        if not choices or not isinstance(choices[0], dict):
            return event
        choices[0]["finish_reason"] = self.finish_reasons.of(finish)
        return event.replaced(payload)

    def _tool_edit(self, event: SSEEvent, key: str, value: str) -> SSEEvent:
        payload = clone(event.json)
        calls = as_list((self._delta(payload) or {}).get("tool_calls"))
        if not calls or not isinstance(calls[0], dict):
            return event
        calls[0].setdefault("function", {})[key] = value
        return event.replaced(payload)

    def event_tool_args(self, event: SSEEvent) -> str | None:
        calls = as_list((self._delta(event.json) or {}).get("tool_calls"))
        arguments = as_dict(as_dict(calls[0]).get("function")).get("arguments") if calls else None
        return arguments if isinstance(arguments, str) else None

    def event_with_tool_name(self, event: SSEEvent, name: str) -> SSEEvent:
        return self._tool_edit(event, "name", name)

    def event_with_tool_args(self, event: SSEEvent, arguments: str) -> SSEEvent:
        return self._tool_edit(event, "arguments", arguments)
