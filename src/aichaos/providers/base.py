"""The interface every provider implements: all wire details of one provider live behind it.

A *dialect* is one API surface (OpenAI chat completions, OpenAI responses,
Anthropic messages, Gemini generateContent, ...): it renders success bodies and
streams, reads usage, and edits bodies and stream events for content faults.
A *provider* groups dialects with the provider's error bodies and headers.

Everything here is pure data in, data out: no I/O.
"""

from __future__ import annotations

import enum
import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from aichaos.wire.exchange import Part, Pause, Reply, RequestInfo
from aichaos.wire.sse import SSEEvent, comment

Headers = Sequence[tuple[str, str]]
"""Response headers in order, names as sent."""

Finish = Literal["stop", "length", "content_filter", "tool_calls"]
"""Provider-neutral finish reasons; each dialect maps them to its own words."""

StreamEnd = Literal["complete", "error"]
"""How a stream event ends the answer: the provider's final event, or an in-band error."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text; may be deliberately invalid


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Completion:
    """A provider-neutral model answer, rendered by a dialect into its wire shape."""

    model: str
    text: str
    finish: Finish = "stop"
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    chunks: list[str] | None = None  # how the text is split into stream deltas (tokens)


@dataclass
class Delivered:
    """What a stream's deltas delivered so far, per output item and part (keys are the
    dialect's own), for dialects whose later events repeat the whole answer."""

    texts: dict[str, str] = field(default_factory=dict)
    tool_names: dict[str, str] = field(default_factory=dict)
    tool_arguments: dict[str, str] = field(default_factory=dict)
    events: int = 0  # events sent so far (Responses numbers them)
    opening: dict[str, Any] = field(default_factory=dict)  # the stream's opening answer object


@dataclass
class Tool:
    """A function a request offers, with its JSON schema."""

    name: str
    schema: dict[str, Any]


@dataclass
class Prompt:
    """The parts of a request that shape a model's answer (read by each dialect)."""

    last_user: str = ""
    all_text: str = ""
    max_tokens: int | None = None
    tools: list[Tool] = field(default_factory=list)
    tool_result_last: bool = False  # the conversation ends with a tool result: answer in text
    tools_disabled: bool = False
    forced_tool: str | None = None  # tool_choice names one function
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False


MalformedToolCall = Literal["arguments", "values", "finish", "never"]
"""How a provider delivers tool-call arguments the model got wrong: as unparseable `arguments`
text; as an object whose values are JSON text where the values belong (`values`: Anthropic's
`input` is always an object, and the model's botched calls seen there are stringified
parameters); as a finish reason of its own (Gemini's MALFORMED_FUNCTION_CALL); or never."""


class EventRole(enum.Enum):
    """What a stream event carries, so stream faults can act on it generically."""

    START = "start"  # opening event(s): role, message_start, response.created
    TEXT = "text"  # carries a piece of the answer's text
    TOOL_START = "tool_start"  # starts a tool call (carries the tool name)
    TOOL_ARGS = "tool_args"  # carries a fragment of a tool call's JSON arguments
    FINISH = "finish"  # carries the finish reason
    USAGE = "usage"  # carries usage only
    TERMINATOR = "terminator"  # `data: [DONE]`, `message_stop`
    OTHER = "other"


class Dialect(ABC):
    """One API surface of a provider."""

    name: str
    supports_stream: bool = True
    has_completion: bool = True  # False for embeddings and model listings
    repeats_deltas: bool = False
    """Whether stream events after the deltas repeat the whole answer (Responses' `*.done`
    events and final response): edits of the deltas must then be carried into them."""

    required_fields: tuple[str, ...] = ()  # top-level body fields the provider insists on
    malformed_tool_call: MalformedToolCall = "arguments"  # in a non-streaming body
    malformed_tool_call_stream: MalformedToolCall = "arguments"
    final_event: str = "its final event"  # how a complete stream ends, in words (messages)

    @abstractmethod
    def matches(self, method: str, path: str) -> bool:
        """Whether this dialect serves `method path` (path without query string)."""

    # --- reading requests -----------------------------------------------------
    def read_prompt(self, body: dict[str, Any]) -> Prompt:
        """The prompt, tools and limits a request body carries."""
        return Prompt()

    def tool_call_id(self, rng: random.Random) -> str:
        """A new tool-call id in the provider's shape (`call_...`)."""
        return f"call_{rng.getrandbits(96):024x}"

    # --- rendering (the mock) -------------------------------------------------
    @abstractmethod
    def render(self, req: RequestInfo, completion: Completion) -> Any:
        """The non-streaming success body (a JSON-serialisable object)."""

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        """The streamed success events in order, terminator included."""
        raise NotImplementedError(f"{self.name} does not stream")

    def stream_framing(
        self, req: RequestInfo, events: Iterable[SSEEvent | Pause]
    ) -> tuple[str, Iterator[Part]]:
        """The content type and body parts a stream of `events` goes out as (SSE here)."""
        body = (e.encode() if isinstance(e, SSEEvent) else e for e in events)
        return "text/event-stream; charset=utf-8", body

    # --- reading --------------------------------------------------------------
    def usage_of_body(self, body: Any) -> Usage | None:
        return None

    def usage_of_event(self, event: SSEEvent) -> Usage | None:
        """Usage carried by this event, if any (cumulative figures win over partial ones)."""
        return None

    # --- editing non-streaming bodies (content faults) ----------------------
    def text_of(self, body: Any) -> str:
        return ""

    def with_text(self, body: Any, text: str) -> Any:
        return body

    def with_finish(self, body: Any, finish: Finish, reason: str | None = None) -> Any:
        """The body with `finish`; `reason` is the provider's own word where it has several
        for one neutral finish (Gemini's RECITATION or SPII for `content_filter`)."""
        return body

    def with_output_tokens(self, body: Any, tokens: int) -> Any:
        """The body with its usage saying `tokens` output tokens (after a cut)."""
        return body

    def with_malformed_tool_call(self, body: Any) -> Any:
        """The body as the provider reports a tool call it could not parse
        (`malformed_tool_call == "finish"` only)."""
        return body

    def tool_calls_of(self, body: Any) -> list[ToolCall]:
        return []

    def with_tool_calls(self, body: Any, calls: list[ToolCall]) -> Any:
        return body

    # --- editing stream events (stream and content faults) ------------------
    def classify(self, event: SSEEvent) -> EventRole:
        return EventRole.OTHER

    def event_text(self, event: SSEEvent) -> str | None:
        return None

    def event_with_text(self, event: SSEEvent, text: str) -> SSEEvent:
        return event

    def event_with_finish(
        self, event: SSEEvent, finish: Finish, reason: str | None = None
    ) -> SSEEvent:
        return event

    def event_with_output_tokens(self, event: SSEEvent, tokens: int) -> SSEEvent:
        """A usage-carrying event made to report `tokens` output tokens."""
        return event

    def event_with_malformed_tool_call(self, event: SSEEvent) -> SSEEvent | None:
        """A TOOL_START or FINISH event as the provider streams a tool call it could not
        parse (None: the event goes away); `malformed_tool_call_stream == "finish"` only."""
        return event

    def event_tool_args(self, event: SSEEvent) -> str | None:
        """The tool-call arguments fragment a TOOL_ARGS event carries."""
        return None

    def event_with_tool_name(self, event: SSEEvent, name: str) -> SSEEvent:
        return event

    def event_with_tool_args(self, event: SSEEvent, arguments: str) -> SSEEvent:
        return event

    def note_delivered(self, event: SSEEvent, delivered: Delivered) -> None:
        """Add what this event delivers (text, a tool name, argument fragments) to `delivered`.

        Only dialects that set `repeats_deltas` need it.
        """
        return None

    def event_with_delivered(self, event: SSEEvent, delivered: Delivered) -> SSEEvent:
        """An event that repeats the answer, made to agree with what the deltas delivered."""
        return event

    def stream_end(self, event: SSEEvent, role: EventRole) -> StreamEnd | None:
        """Whether a non-content `event` (of `role`, from `classify`) ends the answer:
        "complete" for the provider's final event, "error" for an in-band error event.

        By default the terminator is the final event and there is no error event.
        """
        return "complete" if role is EventRole.TERMINATOR else None

    def keepalive_event(self) -> SSEEvent | None:
        """What the provider sends to keep an idle stream open (None: nothing)."""
        return comment()


@dataclass(frozen=True)
class ErrorAnswer:
    """One canonical error answer of a provider, as data: the status and the body's fields
    (`None` fields take the provider's defaults for the status). `message` may name
    `{model}`, `{method}`, `{path}` and the values a fault passes (`{limit}`, `{tokens}`,
    `{field}`)."""

    status: int
    type: str | None = None
    code: str | int | None = None
    message: str | None = None
    param: str | None = None


ANSWER_NAMES = (
    "outage",
    "auth_error",
    "model_not_found",
    "context_length",
    "quota_exhausted",
    "invalid_json",
    "missing_field",
    "not_found",
)
"""The canonical answers a provider may define (`quota_exhausted.VARIANT` for variants)."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def seconds_text(seconds: float) -> str:
    """A delay in seconds as a header value: an integer when whole, else a decimal."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def merge_headers(
    base: list[tuple[str, str]], extra: list[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    """`base` with `extra` appended; an `extra` header replaces any `base` one of that name."""
    if not extra:
        return list(base)
    names = {k.lower() for k, _ in extra}
    return [(k, v) for k, v in base if k.lower() not in names] + list(extra)


def json_reply(
    status: int,
    body: Any,
    base: list[tuple[str, str]],
    extra: list[tuple[str, str]] | None = None,
) -> Reply:
    """A JSON reply with the provider's `base` headers; an `extra` header replaces every
    header of its name, `content-type` included (never a second one)."""
    reply = Reply.json(status, body, base)
    return Reply(status, merge_headers(reply.headers, extra), reply.body)


def whole_seconds(seconds: float) -> str:
    """A delay as `retry-after` delay-seconds: a whole number, rounded up (0.2 -> `1`)."""
    return str(math.ceil(round(max(seconds, 0.0), 6)))  # float noise never adds a second


def _fill(template: str, values: Mapping[str, str]) -> str:
    """`{name}` replaced by its value; unknown names and other braces stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass(frozen=True)
class SdkEnvironment:
    """How the provider's official SDK is pointed elsewhere through its environment."""

    base_url: str  # the variable the SDK reads its base URL from
    base_path: str  # what the SDK expects after the host, e.g. OpenAI's `/v1`
    api_key: str  # the variable the SDK reads its API key from
    placeholder_key: str  # a key for offline runs: SDKs refuse to start without one


class Provider(ABC):
    """One provider's wire format: dialects, error bodies, headers."""

    name: str
    default_host: str
    # Every host the provider's clients reach with this wire format, `*` standing for part
    # of one DNS label (`*.openai.azure.com`); empty: just `default_host`.
    hosts: tuple[str, ...] = ()
    dialects: tuple[Dialect, ...] = ()
    sdk_env: SdkEnvironment | None = None
    name_hints: tuple[str, ...] = ()
    """Words in a backend's name that suggest this provider (`claude-fallback`)."""

    @property
    def claimed_hosts(self) -> tuple[str, ...]:
        """The hosts a backend of this provider claims in-process unless told otherwise."""
        return self.hosts or (self.default_host,)

    def dialect_for(self, method: str, path: str) -> Dialect | None:
        for dialect in self.dialects:
            if dialect.matches(method, path):
                return dialect
        return None

    # --- headers --------------------------------------------------------------
    @abstractmethod
    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        """Headers the provider puts on every response (request id, version, ...)."""

    @abstractmethod
    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        """The provider's rate-limit headers for one scope (`requests` or `tokens`)."""

    def retry_after_headers(self, seconds: float) -> list[tuple[str, str]]:
        """How the provider tells a client to wait: `retry-after` in whole seconds, rounded up
        (RFC 9110 delay-seconds; Anthropic sends whole seconds). Azure adds `retry-after-ms`;
        OpenAI keeps the wait's precision (see each provider)."""
        return [("retry-after", whole_seconds(seconds))]

    # --- errors -------------------------------------------------------------
    answers: ClassVar[Mapping[str, ErrorAnswer]] = {}
    """The provider's canonical error answers by name (see `ANSWER_NAMES`): data, so a new
    error-like fault kind adds entries here instead of a method on every provider."""

    def error(
        self,
        req: RequestInfo,
        status: int,
        *,
        type: str | None = None,
        code: str | int | None = None,
        message: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        param: str | None = None,
    ) -> Reply:
        """An error response with the provider's own body shape (`error_body`) and headers;
        `headers` replace the provider's own of their names."""
        base = self.response_headers(req)
        body = self.error_body(ErrorAnswer(status, type, code, message, param), base)
        return json_reply(status, body, base, headers)

    @abstractmethod
    def error_body(self, fields: ErrorAnswer, headers: list[tuple[str, str]]) -> dict[str, Any]:
        """The JSON body of an error answer; `None` fields take the provider's defaults for
        `fields.status`. `headers` are the answer's own (a body may repeat its request id)."""

    def template_values(self, req: RequestInfo) -> dict[str, str]:
        """Values an answer's message may name: `{model}`, `{method}`, `{path}`, ..."""
        return {"model": req.model or "", "method": req.method, "path": req.path}

    def answer(self, req: RequestInfo, name: str, **values: object) -> Reply | None:
        """The canonical answer `name`, its message filled in; None if the provider has none."""
        spec = self.answers.get(name)
        if spec is None:
            return None
        filled = {**self.template_values(req), **{k: str(v) for k, v in values.items()}}
        message = _fill(spec.message, filled) if spec.message is not None else None
        return self.error(
            req, spec.status, type=spec.type, code=spec.code, message=message, param=spec.param
        )

    def outage(self, req: RequestInfo, status: int | None = None) -> Reply:
        """The provider's typical server-side failure (its most common status by default)."""
        if status is not None:
            return self.error(req, status)
        return self.answer(req, "outage") or self.error(req, 500)

    def rate_limited(
        self, req: RequestInfo, *, scope: str, retry_after: float | None, limit: int
    ) -> Reply:
        """A 429 that clears after `retry_after` seconds (no `retry-after` when None: a wait
        of 1 s in the other headers), with the rate-limit headers of `scope` (`requests` or
        `tokens`) and the fields of `rate_limit_answer`."""
        wait = retry_after if retry_after is not None else 1.0
        headers = self.rate_limit_headers(scope=scope, limit=limit, remaining=0, reset_seconds=wait)
        if retry_after is not None:
            headers += self.retry_after_headers(retry_after)
        fields = self.rate_limit_answer(req, scope=scope, limit=limit, wait=wait)
        return self.error(
            req,
            429,
            type=fields.type,
            code=fields.code,
            message=fields.message,
            param=fields.param,
            headers=headers,
        )

    def rate_limit_answer(
        self, req: RequestInfo, *, scope: str, limit: int, wait: float
    ) -> ErrorAnswer:
        """The body fields of the provider's 429 for `scope`; the status's defaults here."""
        return ErrorAnswer(429)

    def quota_exhausted(self, req: RequestInfo, variant: str | None = None) -> Reply:
        """The error that waiting will not clear, exactly as the provider sends it.

        `variant` picks among several such errors where a provider has more than one.
        """
        named = self.answer(req, f"quota_exhausted.{variant}") if variant else None
        return named or self.answer(req, "quota_exhausted") or self.error(req, 429)

    def context_length(self, req: RequestInfo, *, limit: int, tokens: int) -> Reply:
        """The provider's context-length-exceeded error."""
        reply = self.answer(req, "context_length", limit=limit, tokens=tokens)
        return reply or self.error(req, 400)

    def auth_error(self, req: RequestInfo) -> Reply:
        """The provider's answer to a bad API key."""
        return self.answer(req, "auth_error") or self.error(req, 401)

    def model_not_found(self, req: RequestInfo) -> Reply:
        """The provider's answer naming an unknown model."""
        return self.answer(req, "model_not_found") or self.error(req, 404)

    def request_error(self, req: RequestInfo) -> Reply | None:
        """The 400 the provider answers a request it cannot take (body not JSON, a required
        field missing); None when the request is well formed."""
        dialect = self.dialect_for(req.method, req.path.split("?", 1)[0])
        if dialect is None or req.method != "POST":
            return None
        body = req.json
        if not isinstance(body, dict):
            return self.answer(req, "invalid_json") or self.error(req, 400)
        for field_name in dialect.required_fields:
            if field_name not in body:
                return self.answer(req, "missing_field", field=field_name) or self.error(req, 400)
        return None

    def content_filter_error(self, req: RequestInfo, reason: str | None = None) -> Reply | None:
        """What a provider answers when the *prompt* is filtered (an error, or Gemini's
        blocked-prompt 200); None if it has no such answer. `reason` picks a variant."""
        return None

    @abstractmethod
    def stream_error_event(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> SSEEvent:
        """An error delivered inside an already-started (200) stream; `headers` are the
        stream's own (Anthropic's event repeats their `request-id`)."""

    def stream_error_events(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> list[SSEEvent]:
        """The in-band error a stream sends when it fails after it started."""
        return [self.stream_error_event(req, type=type, message=message, headers=headers)]

    def stream_failure_events(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> list[SSEEvent]:
        """The terminal event of a failed answer where the provider has one (Responses'
        `response.failed`); else the in-band error."""
        return self.stream_error_events(req, type=type, message=message, headers=headers)
