"""Faults acting event by event on a live stream: slow, cut short, or stalled."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field

from aichaos.faults.base import Fault
from aichaos.faults.plan import EditContext, Plan, StreamEdit, StreamOut
from aichaos.providers.base import EventRole
from aichaos.units import Duration
from aichaos.wire.exchange import Abort, Pause
from aichaos.wire.sse import SSEEvent

_CONTENT = (EventRole.TEXT, EventRole.TOOL_ARGS)


def _role(ctx: EditContext, event: SSEEvent) -> EventRole:
    return ctx.dialect.classify(event) if ctx.dialect is not None else EventRole.OTHER


def _edit_stream(plan: Plan, factory: Callable[[EditContext], StreamEdit]) -> bool:
    """Add a stream edit to `plan` if its answer is a stream of a dialect that streams;
    whether it was added (the fault acted)."""
    if not (plan.req.stream and plan.dialect is not None and plan.dialect.supports_stream):
        return False
    plan.stream_edit_factories.append(factory)
    return True


class SlowStream(Fault):
    """A late first token and slow tokens after it.

    Streams only. Waits `ttft` before the first content event and `inter_token` before each
    later one: time to first token and total time grow while the answer stays intact. A wait
    longer than the client's read timeout ends the stream with a read timeout (not retried).
    """

    summary: ClassVar[str] = "streaming with a late first token (ttft) and slow tokens"
    kind: Literal["slow_stream"] = "slow_stream"
    ttft: Duration = Field(2.0, description="Extra wait before the first token.")
    inter_token: Duration = Field(0.1, description="Extra wait before each later token.")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        return _edit_stream(plan, lambda ctx: _SlowEdit(ctx, self))


class _SlowEdit(StreamEdit):
    def __init__(self, ctx: EditContext, fault: SlowStream) -> None:
        self.ctx, self.fault, self.tokens = ctx, fault, 0

    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        if _role(self.ctx, event) not in (*_CONTENT, EventRole.TOOL_START):
            return [event]
        self.tokens += 1
        wait = self.fault.ttft if self.tokens == 1 else self.fault.inter_token
        return [Pause(wait), event] if wait > 0 else [event]


class StreamCut(Fault):
    """The stream ends early after N content events.

    Streams only; the finish reason never arrives. `drop` resets the connection (openai >= 3.22:
    `APIConnectionError` while iterating; anthropic: raw `httpx2.RemoteProtocolError`; never
    retried). `error_event` sends the provider's in-stream error: OpenAI `data: {"error": ...}`
    raises `APIError` without a status; the Responses API's flat `error` event (its
    `sequence_number` the next one) is yielded, not raised; Anthropic `event: error`
    (`overloaded_error`, `error.details` null, `request_id` the stream's `request-id`, as
    production sends it) raises `APIStatusError` with status 200, not `OverloadedError`, and is
    not retried; Gemini an error chunk (google-genai raises `ServerError` by its code).
    `failed`: the Responses API ends with `response.failed` (`status: failed`, the error's code
    and message, no `response.completed`); the openai SDK yields it and its
    `get_final_response()` raises `RuntimeError`; elsewhere the same as `error_event`.
    `no_terminator` just ends the stream (no `[DONE]`, no `message_stop`): neither SDK raises,
    the answer is silently short and its finish reason is missing.
    """

    summary: ClassVar[str] = (
        "the stream ends early after N tokens (drop, error_event, no_terminator)"
    )
    kind: Literal["stream_cut"] = "stream_cut"
    after: int = Field(3, ge=0, description="Content events (tokens) delivered before the cut.")
    mode: Literal["drop", "error_event", "failed", "no_terminator"] = Field(
        "drop",
        description="drop: the connection resets; error_event: the provider's in-stream error;"
        " failed: the provider's failed-answer end (Responses `response.failed`);"
        " no_terminator: the stream just ends, without finish or terminator.",
    )
    error_type: str | None = Field(None, description="error_event: the error type to send.")
    message: str | None = Field(None, description="error_event: the error message.")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        return _edit_stream(plan, lambda ctx: _CutEdit(ctx, self))

    def label(self) -> str:
        return f"stream_cut({self.mode})"


class _CutEdit(StreamEdit):
    def __init__(self, ctx: EditContext, fault: StreamCut) -> None:
        self.ctx, self.fault, self.tokens = ctx, fault, 0

    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        role = _role(self.ctx, event)
        if (
            role not in _CONTENT
            and role is not EventRole.FINISH
            and role is not EventRole.TERMINATOR
        ):
            return [event]
        if role in _CONTENT and self.tokens < self.fault.after:
            self.tokens += 1
            return [event]
        return self._cut()

    def on_end(self) -> list[StreamOut]:
        return [] if self.ends_stream else self._cut()

    def _cut(self) -> list[StreamOut]:
        self.ends_stream = True
        if self.fault.mode == "drop":
            return [Abort("reset")]
        if self.fault.mode == "no_terminator":
            return []
        provider = self.ctx.provider
        default_type, default_message = provider.stream_error
        events = (
            provider.stream_failure_events
            if self.fault.mode == "failed"
            else provider.stream_error_events
        )
        return list(
            events(
                self.ctx.req,
                type=self.fault.error_type or default_type,
                message=self.fault.message or default_message,
                headers=self.ctx.headers,
            )
        )


class StreamStall(Fault):
    """The stream goes silent after N content events, then resumes.

    Streams only. After `after` content events nothing arrives for `stall`. Without
    `keepalive`, a stall longer than the client's read timeout ends the stream with a read
    timeout (not retried). With `keepalive`, the provider's keep-alive (Anthropic
    `event: ping`, an SSE comment for OpenAI) is sent at that interval, which keeps the client's
    read timeout from firing: the call just takes `stall` longer. Gemini sends no keep-alive
    (google-genai parses every line as JSON), so a Gemini stall stays silent.
    """

    summary: ClassVar[str] = "the stream goes silent after N tokens for `stall`"
    kind: Literal["stream_stall"] = "stream_stall"
    after: int = Field(3, ge=0, description="Content events (tokens) delivered before the stall.")
    stall: Duration = Field(30.0, description="How long the stream stays silent.")
    keepalive: Duration | None = Field(
        None, description="Send the provider's keep-alive (ping) this often while stalled."
    )

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        return _edit_stream(plan, lambda ctx: _StallEdit(ctx, self))


class _StallEdit(StreamEdit):
    def __init__(self, ctx: EditContext, fault: StreamStall) -> None:
        self.ctx, self.fault, self.tokens, self.stalled = ctx, fault, 0, False

    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        if self.stalled or _role(self.ctx, event) not in _CONTENT:
            return [event]
        if self.tokens < self.fault.after:
            self.tokens += 1
            return [event]
        self.stalled = True
        return [*self._silence(), event]

    def _silence(self) -> list[StreamOut]:
        interval = self.fault.keepalive
        keepalive = self.ctx.dialect_keepalive()
        if not interval or keepalive is None:
            return [Pause(self.fault.stall)]
        outs: list[StreamOut] = []
        left = self.fault.stall
        while left > interval:
            outs += [Pause(interval), keepalive]
            left -= interval
        outs.append(Pause(left))
        return outs
