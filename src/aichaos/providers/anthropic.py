"""Anthropic Messages API (`POST /v1/messages`)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from aichaos.providers._common import (
    base58_id,
    chunks_of,
    content_text,
    dump_arguments,
    name_or_none,
    new_id,
    parse_arguments,
    positive_int,
    rfc3339_in,
    split_arguments,
    typed_items,
    with_typed_items,
)
from aichaos.providers._json import TypedField, as_dict, as_list, clone
from aichaos.providers.base import (
    Completion,
    Dialect,
    EventRole,
    Finish,
    FinishWords,
    Headers,
    MalformedToolCall,
    Prompt,
    StreamEnd,
    Tool,
    ToolCall,
    Usage,
)
from aichaos.providers.provider import Provider, SdkEnvironment
from aichaos.providers.replies import ErrorAnswer
from aichaos.wire.exchange import RequestInfo
from aichaos.wire.sse import SSEEvent


def _usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _tool_block(call: ToolCall) -> dict[str, Any]:
    # Deliberately invalid arguments stay a raw string: a malformed `input`.
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.name,
        "input": parse_arguments(call.arguments),
    }


def _sse(payload: dict[str, Any]) -> SSEEvent:
    return SSEEvent.of(payload, event=str(payload["type"]))


class Messages(Dialect):
    """Messages: content blocks, typed stream events, no `[DONE]`."""

    name = "messages"
    default_model = "claude-sonnet-4-6"
    final_event = "event: message_stop"

    # A body's `input` is always an object: unparseable JSON exists only in streamed
    # `partial_json` (docs: fine-grained tool streaming; the SDK's `input` type is an object),
    # so a broken call goes out as an object with stringified parameters, the botched calls
    # reported from Claude (inkeep/agents#1285, itential/itential-mcp#218).
    malformed_tool_call: MalformedToolCall = "values"
    required_fields = ("model", "messages", "max_tokens")

    finish_reasons = FinishWords("end_turn", "max_tokens", "refusal", "tool_use")
    usage_at = ("usage", "input_tokens", "output_tokens")
    text_field = TypedField("delta", "text_delta", "text")
    tool_args_field = TypedField("delta", "input_json_delta", "partial_json")
    tool_name_field = TypedField("content_block", "tool_use", "name")

    endpoint = ("POST", "/v1/messages")

    def read_prompt(self, body: dict[str, Any]) -> Prompt:
        messages = [as_dict(m) for m in as_list(body.get("messages"))]
        users = [m for m in messages if m.get("role") == "user"]
        last = users[-1].get("content") if users else None
        system = body.get("system")
        return Prompt(
            last_user=content_text(last),
            all_text=" ".join(
                [content_text(system)] + [content_text(m.get("content")) for m in messages]
            ),
            max_tokens=positive_int(body.get("max_tokens")),
            tools=[
                Tool(str(t.get("name", "tool")), as_dict(t.get("input_schema")))
                for t in map(as_dict, as_list(body.get("tools")))
                if "input_schema" in t
            ],
            tool_result_last=any(as_dict(b).get("type") == "tool_result" for b in as_list(last))
            and bool(messages)
            and messages[-1].get("role") == "user",
            tools_disabled=as_dict(body.get("tool_choice")).get("type") == "none",
            forced_tool=name_or_none(as_dict(body.get("tool_choice")).get("name")),
        )

    def tool_call_id(self, rng: random.Random) -> str:
        return f"toolu_01{rng.getrandbits(96):024x}"

    def _message(self, completion: Completion, content: list[Any], final: bool) -> dict[str, Any]:
        return {
            "id": new_id("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": content,
            "stop_reason": self.finish_reasons.of(completion.finish) if final else None,
            "stop_sequence": None,
            "usage": _usage_json(
                completion.usage if final else Usage(completion.usage.input_tokens, 1)
            ),
        }

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        content: list[Any] = []
        if completion.text or not completion.tool_calls:
            content.append({"type": "text", "text": completion.text})
        content += [_tool_block(c) for c in completion.tool_calls]
        return self._message(completion, content, final=True)

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        yield _sse({"type": "message_start", "message": self._message(completion, [], False)})
        index = 0
        pinged = False
        if completion.text or not completion.tool_calls:
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            )
            yield _sse({"type": "ping"})
            pinged = True
            for piece in chunks_of(completion):
                yield _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    }
                )
            yield _sse({"type": "content_block_stop", "index": 0})
            index = 1
        for call in completion.tool_calls:
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": {},
                    },
                }
            )
            if not pinged:
                yield _sse({"type": "ping"})
                pinged = True
            for fragment in ["", *split_arguments(call.arguments)]:
                yield _sse(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": fragment},
                    }
                )
            yield _sse({"type": "content_block_stop", "index": index})
            index += 1
        yield _sse(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": self.finish_reasons.of(completion.finish),
                    "stop_sequence": None,
                },
                # Current API repeats cumulative input tokens here.
                "usage": {
                    "input_tokens": completion.usage.input_tokens,
                    "output_tokens": completion.usage.output_tokens,
                },
            }
        )
        yield _sse({"type": "message_stop"})

    # --- reading --------------------------------------------------------------
    def usage_of_event(self, event: SSEEvent) -> Usage | None:
        payload = as_dict(event.json)
        if payload.get("type") == "message_start":
            return self.usage_of_body(payload.get("message"))
        if payload.get("type") == "message_delta":
            return self.usage_of_body(payload)
        return None

    # --- non-streaming edits --------------------------------------------------
    def text_of(self, body: Any) -> str:
        return "".join(
            str(block.get("text", ""))
            for block in as_list(as_dict(body).get("content"))
            if as_dict(block).get("type") == "text"
        )

    def with_text(self, body: Any, text: str) -> Any:
        new = clone(body)
        if not isinstance(new, dict):
            return new
        blocks = [b for b in as_list(new.get("content")) if as_dict(b).get("type") != "text"]
        new["content"] = [{"type": "text", "text": text}, *blocks]
        return new

    def with_finish(self, body: Any, finish: Finish, reason: str | None = None) -> Any:
        new = clone(body)
        if isinstance(new, dict):
            new["stop_reason"] = self.finish_reasons.of(finish)
        return new

    def with_output_tokens(self, body: Any, tokens: int) -> Any:
        new = clone(body)
        usage = as_dict(as_dict(new).get("usage"))
        if usage:
            usage["output_tokens"] = tokens
        return new

    def event_with_output_tokens(self, event: SSEEvent, tokens: int) -> SSEEvent:
        payload = as_dict(event.json)
        if payload.get("type") != "message_delta" or "usage" not in payload:
            return event
        return event.replaced(self.with_output_tokens(payload, tokens))

    def tool_calls_of(self, body: Any) -> list[ToolCall]:
        return [
            ToolCall(
                str(b.get("id", "")), str(b.get("name", "")), dump_arguments(b.get("input", {}))
            )
            for b in typed_items(body, "content", "tool_use")
        ]

    def with_tool_calls(self, body: Any, calls: list[ToolCall]) -> Any:
        return with_typed_items(body, "content", "tool_use", [_tool_block(c) for c in calls])

    # --- stream edits ---------------------------------------------------------
    def classify(self, event: SSEEvent) -> EventRole:
        payload = as_dict(event.json)
        kind = payload.get("type") or event.event
        if kind == "message_start":
            return EventRole.START
        if kind == "content_block_start":
            block = as_dict(payload.get("content_block"))
            return EventRole.TOOL_START if block.get("type") == "tool_use" else EventRole.OTHER
        if kind == "content_block_delta":
            delta_type = as_dict(payload.get("delta")).get("type")
            if delta_type == "text_delta":
                return EventRole.TEXT
            if delta_type == "input_json_delta":
                return EventRole.TOOL_ARGS
            return EventRole.OTHER
        if kind == "message_delta":
            return EventRole.FINISH
        if kind == "message_stop":
            return EventRole.TERMINATOR
        return EventRole.OTHER

    def stream_end(self, event: SSEEvent, role: EventRole) -> StreamEnd | None:
        """Final event `message_stop`; in-band error `event: error` (the anthropic SDK raises
        `APIStatusError` with the stream's 200; provider-wire-formats.md §Anthropic streams)."""
        if role is EventRole.TERMINATOR:
            return "complete"
        if event.event == "error" or as_dict(event.json).get("type") == "error":
            return "error"
        return None

    def event_with_finish(
        self, event: SSEEvent, finish: Finish, reason: str | None = None
    ) -> SSEEvent:
        payload = clone(event.json)
        if as_dict(payload).get("type") != "message_delta":
            return event
        payload.setdefault("delta", {})["stop_reason"] = self.finish_reasons.of(finish)
        return event.replaced(payload)

    def keepalive_event(self) -> SSEEvent:
        return _sse({"type": "ping"})


_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your account has a billing issue."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}


def request_id() -> str:
    """A request id shaped like Anthropic's: `req_011C` and 20 base58 characters
    (`req_011CZuRovTW47JsNutG73SAU`, as seen in public error reports)."""
    return base58_id("req_011C", 20)


SPEND_MESSAGE = (
    "Your organization has reached its monthly API usage limit. Increase the limit in the "
    "Anthropic Console, or wait until it resets."
)
CREDIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing "
    "to upgrade or purchase credits."
)


class AnthropicProvider(Provider):
    """api.anthropic.com: `{"type":"error","error":{type,message},"request_id"}` bodies.

    `quota_exhausted` is the out-of-credit error, which Anthropic sends as **400**
    `invalid_request_error` ("Your credit balance is too low ...", per the reference), not a
    429: it is the documented "waiting will not clear it" failure, and the SDK does not retry it.
    """

    answers = {
        "outage": ErrorAnswer(529),
        "auth_error": ErrorAnswer(401, "authentication_error", None, "invalid x-api-key"),
        "model_not_found": ErrorAnswer(404, "not_found_error", None, "model: {model}"),
        "context_length": ErrorAnswer(
            400,
            "invalid_request_error",
            None,
            "prompt is too long: {tokens} tokens > {limit} maximum",
        ),
        # The monthly spend limit: `details.error_code` makes anthropic>=2 raise
        # `EnforcedSpendLimitReachedError` (a `RateLimitError`); the SDK still retries it like
        # any 429. The message text is not verified against the live API.
        "quota_exhausted": ErrorAnswer(
            429, "rate_limit_error", "enforced_spend_limit_reached", SPEND_MESSAGE
        ),
        # The 400 sent when prepaid credit runs out (not retried).
        "quota_exhausted.credit_balance": ErrorAnswer(
            400, "invalid_request_error", None, CREDIT_MESSAGE
        ),
        # Wording of these two is not verified against the live API; the type and status are.
        "invalid_json": ErrorAnswer(
            400,
            "invalid_request_error",
            None,
            "There was an error parsing the body of your request.",
        ),
        "missing_field": ErrorAnswer(400, "invalid_request_error", None, "{field}: Field required"),
    }

    name = "anthropic"
    # The mid-stream `event: error` Anthropic documents (provider-wire-formats.md).
    stream_error = ("overloaded_error", "Overloaded")
    name_hints = ("anthropic", "claude")
    default_host = "api.anthropic.com"
    sdk_env = SdkEnvironment("ANTHROPIC_BASE_URL", "", "ANTHROPIC_API_KEY", "sk-ant-aichaos-mock")

    def __init__(self) -> None:
        self.dialects: tuple[Dialect, ...] = (Messages(),)

    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return [
            ("request-id", request_id()),
            *self.rate_limit_headers(scope="requests", limit=4000, remaining=3999, reset_seconds=1),
            *self.rate_limit_headers(
                scope="tokens", limit=2000000, remaining=1999000, reset_seconds=1
            ),
        ]

    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        prefix = f"anthropic-ratelimit-{scope}"
        return [
            (f"{prefix}-limit", str(limit)),
            (f"{prefix}-remaining", str(remaining)),
            (f"{prefix}-reset", rfc3339_in(reset_seconds)),
        ]

    def error_body(self, fields: ErrorAnswer, headers: list[tuple[str, str]]) -> dict[str, Any]:
        default_type, default_message = _DEFAULTS.get(
            fields.status,
            ("api_error", "Internal server error")
            if fields.status >= 500
            else ("invalid_request_error", "Invalid request."),
        )
        error: dict[str, object] = {
            "type": fields.type or default_type,
            "message": fields.message or default_message,
        }
        if fields.code is not None:
            # Anthropic carries a finer code in `details`; anthropic>=2 picks its class by it.
            error["details"] = {"error_code": fields.code}
        return {"type": "error", "error": error, "request_id": dict(headers)["request-id"]}

    def rate_limit_answer(
        self, req: RequestInfo, *, scope: str, limit: int, wait: float
    ) -> ErrorAnswer:
        unit = "input tokens" if scope == "tokens" else "requests"
        message = (
            f"This request would exceed the rate limit for your organization of {limit} {unit} "
            "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You "
            "can see the response headers for current usage. Please reduce the prompt length or "
            "the maximum tokens requested, or try again later."
        )
        return ErrorAnswer(429, "rate_limit_error", message=message)

    def stream_error_event(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> SSEEvent:
        """`event: error` as production streams send it: `error.details` null and the
        stream's own `request-id` as `request_id` (provider-wire-formats.md, second-round
        facts; `types/shared/error_response.py` in the SDK)."""
        found = next((v for k, v in headers if k.lower() == "request-id"), None)
        return _sse(
            {
                "type": "error",
                "error": {"details": None, "type": type, "message": message},
                "request_id": found or request_id(),
            }
        )
