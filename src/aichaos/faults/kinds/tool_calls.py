"""Tool calls gone wrong: invalid JSON arguments, unknown tool names, missing arguments."""

from __future__ import annotations

import json
import random
from typing import Any, ClassVar, Literal

from pydantic import Field

from aichaos.faults.base import Fault
from aichaos.faults.kinds._edits import has_content, json_edit
from aichaos.faults.plan import EditContext, Plan, StreamEdit, StreamOut
from aichaos.providers.base import Dialect, EventRole, ToolCall
from aichaos.wire.sse import SSEEvent


class BadToolCall(Fault):
    """Tool calls with invalid JSON arguments, unknown tool names or missing arguments.

    Acts on the tool calls the model made (the mock makes one whenever tools are offered).
    `invalid_json`: the arguments get one stray brace up front (`{` + the arguments), the same
    in streams (on the first fragment) and bodies, so they never parse, `{}` included; the
    openai SDK hands them over as they are and `json.loads` fails in the app. Gemini never sends
    unparseable `args` (an object): the answer ends with `finishReason:
    MALFORMED_FUNCTION_CALL` and no call (google-genai: `function_calls is None`,
    `text is None`). Anthropic: streamed `partial_json` fragments (the SDK's
    `messages.stream()` raises `ValueError` "Unable to parse tool parameter JSON"); a
    non-streaming `input` stays an object, as the API always sends it (unparseable JSON exists
    only in streams), with each value sent as its JSON text: the stringified parameters seen
    from Claude (`{"city": "\\"Paris\\""}`, `[1, 2]` as `"[1, 2]"`), which the tool's schema
    rejects or the app must decode; an input with no fields stays `{}`.
    `empty_arguments`: the arguments are an empty string (OpenAI; Anthropic streams send no
    `partial_json` and bodies send `{}`, so the SDK's `input` is `{}`).
    `unknown_tool` renames the tool to `tool_name`, `missing_arguments` sends `{}`. Answers
    without tool calls pass unchanged.
    """

    summary: ClassVar[str] = "tool calls with invalid JSON arguments, unknown names or no arguments"
    kind: Literal["bad_tool_call"] = "bad_tool_call"
    variant: Literal["invalid_json", "empty_arguments", "unknown_tool", "missing_arguments"] = (
        Field(
            "invalid_json",
            description="invalid_json, empty_arguments, unknown_tool or missing_arguments.",
        )
    )
    tool_name: str = Field("no_such_tool", description="unknown_tool: the name to call.")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        if not has_content(plan):
            return False
        assert plan.dialect is not None
        broken = self.variant in ("invalid_json", "empty_arguments")
        if plan.req.stream:
            how = plan.dialect.malformed_tool_call_stream
            if broken and how == "never":
                return False
            plan.stream_edit_factories.append(lambda ctx: _ToolCallEdit(ctx, self, how))
        else:
            how = plan.dialect.malformed_tool_call
            if broken and how == "never":
                return False
            if broken and how == "finish":
                plan.body_edits.append(json_edit(self._malformed_body))
            elif broken and how == "values":
                plan.body_edits.append(json_edit(self._mangle_values))
            else:
                plan.body_edits.append(json_edit(self._edit_body))
        return True

    @staticmethod
    def _malformed_body(dialect: Dialect, body: Any) -> Any:
        if not dialect.tool_calls_of(body):
            return body
        return dialect.with_malformed_tool_call(body)

    def _edit_body(self, dialect: Dialect, body: Any) -> Any:
        calls = dialect.tool_calls_of(body)
        if not calls:
            return body
        return dialect.with_tool_calls(body, [self._mangle(call) for call in calls])

    def _mangle_values(self, dialect: Dialect, body: Any) -> Any:
        """`values` providers (Anthropic): the arguments stay an object. `invalid_json`: each
        value is sent as its JSON text (`"Paris"` -> `"\\"Paris\\""`, `[1]` -> `"[1]"`), so
        the tool's schema no longer holds; `empty_arguments`: `{}`, as the SDK's `input`
        stays when a stream sends no `partial_json`."""
        calls = dialect.tool_calls_of(body)
        if not calls:
            return body
        return dialect.with_tool_calls(body, [_stringified(self.variant, c) for c in calls])

    def _mangle(self, call: ToolCall) -> ToolCall:
        if self.variant == "unknown_tool":
            return ToolCall(call.id, self.tool_name, call.arguments)
        if self.variant == "missing_arguments":
            return ToolCall(call.id, call.name, "{}")
        if self.variant == "empty_arguments":
            return ToolCall(call.id, call.name, "")
        return ToolCall(call.id, call.name, "{" + call.arguments)

    def label(self) -> str:
        return f"bad_tool_call({self.variant})"


def _stringified(variant: str, call: ToolCall) -> ToolCall:
    if variant == "empty_arguments":
        return ToolCall(call.id, call.name, "{}")
    try:
        value = json.loads(call.arguments)
    except ValueError:
        return call
    if not isinstance(value, dict):
        return call
    return ToolCall(call.id, call.name, json.dumps({k: json.dumps(v) for k, v in value.items()}))


class _ToolCallEdit(StreamEdit):
    def __init__(self, ctx: EditContext, fault: BadToolCall, how: str) -> None:
        self.dialect, self.fault, self.args_sent = ctx.dialect, fault, False
        self.malformed = how == "finish" and fault.variant in ("invalid_json", "empty_arguments")
        self.saw_call = False

    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        assert self.dialect is not None
        role = self.dialect.classify(event)
        variant = self.fault.variant
        if self.malformed:
            # The provider reports the call as malformed instead of sending it (Gemini).
            if role is EventRole.TOOL_START:
                self.saw_call = True
            if role is EventRole.TOOL_START or (role is EventRole.FINISH and self.saw_call):
                edited = self.dialect.event_with_malformed_tool_call(event)
                return [] if edited is None else [edited]
            return [event]
        if role is EventRole.TOOL_START:
            self.args_sent = False  # each tool call gets its own arguments
            if variant == "unknown_tool":
                return [self.dialect.event_with_tool_name(event, self.fault.tool_name)]
        if variant == "unknown_tool" or role not in (EventRole.TOOL_START, EventRole.TOOL_ARGS):
            return [event]
        original = self.dialect.event_tool_args(event)
        if role is EventRole.TOOL_START and not original:
            return [event]  # arguments follow in fragments
        first, self.args_sent = not self.args_sent, True
        if variant == "missing_arguments":
            return [self.dialect.event_with_tool_args(event, "{}")] if first else []
        if variant == "empty_arguments":
            return [self.dialect.event_with_tool_args(event, "")] if first else []
        # invalid_json: an extra brace up front leaves the joined arguments unparseable.
        if not first:
            return [event]
        return [self.dialect.event_with_tool_args(event, "{" + (original or ""))]
