"""The interface every provider implements: all wire details of one provider live behind it.

A *dialect* is one API surface (OpenAI chat completions, OpenAI responses,
Anthropic messages, Gemini generateContent, ...): it renders success bodies and
streams, reads usage, and edits bodies and stream events for content faults.
A *provider* (`providers/provider.py`) groups dialects with the provider's error bodies and
headers.

Everything here is pure data in, data out: no I/O.
"""

from __future__ import annotations

import enum
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, get_args

from aichaos.providers._json import TypedField, as_dict, as_int
from aichaos.wire.exchange import Part, Pause, RequestInfo
from aichaos.wire.sse import EventBytes, SSEEvent, comment

Headers = Sequence[tuple[str, str]]
"""Response headers in order, names as sent."""

Finish = Literal["stop", "length", "content_filter", "tool_calls"]
"""Provider-neutral finish reasons; each dialect maps them to its own words."""


class FinishWords(NamedTuple):
    """A dialect's own finish reason for each neutral `Finish` (all four: none forgotten)."""

    stop: str
    length: str
    content_filter: str
    tool_calls: str

    def of(self, finish: Finish) -> str:
        return str(getattr(self, finish))


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
    default_model: str = "mock-model"
    """The model an answer names when its request names none (in the path, say): the
    surface's commonly used model, so a mocked answer looks like a real one."""
    embeds: bool = False
    """Whether the surface answers with embedding vectors (`embed`), not a completion."""

    # The provider's words as data: the default methods below read and edit with them.
    endpoint: ClassVar[tuple[str, str] | None] = None
    """The method and the end of the path this dialect serves (`("POST", "/v1/messages")`)."""
    finish_reasons: ClassVar[FinishWords] = FinishWords(*get_args(Finish))
    """The provider's finish reason for each neutral `Finish` (by default the neutral words,
    which are OpenAI's)."""
    usage_at: ClassVar[tuple[str, str, str] | None] = None
    """Where a body carries usage: (its object, the input tokens key, the output tokens key),
    read by `usage_of_body`; None: no usage."""
    text_field: ClassVar[TypedField | None] = None
    """Where typed stream events carry a text delta (`event_text`, `event_with_text`)."""
    tool_args_field: ClassVar[TypedField | None] = None
    """Where they carry a tool call's arguments fragment (`event_tool_args`, ...)."""
    tool_name_field: ClassVar[TypedField | None] = None
    """Where they carry a tool call's name (`event_with_tool_name`)."""

    def matches(self, method: str, path: str) -> bool:
        """Whether this dialect serves `method path` (path without query string): by default
        `endpoint`'s method and a path that ends as it says."""
        if self.endpoint is None:
            raise NotImplementedError(
                f"{type(self).__name__}: set `endpoint` or override `matches`"
            )
        return method == self.endpoint[0] and path.endswith(self.endpoint[1])

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

    def embed(self, req: RequestInfo, *, seed: int, model: str | None = None) -> dict[str, Any]:
        """The embeddings answer body (deterministic for seed + input) of a surface that
        `embeds`; NotImplementedError for the others."""
        raise NotImplementedError(f"{self.name} does not embed")

    def stream_framing(
        self, req: RequestInfo, events: Iterable[SSEEvent | Pause]
    ) -> tuple[str, Iterator[Part]]:
        """The content type and body parts a stream of `events` goes out as (SSE here)."""
        body = (EventBytes.of(e) if isinstance(e, SSEEvent) else e for e in events)
        return "text/event-stream; charset=utf-8", body

    # --- reading --------------------------------------------------------------
    def usage_of_body(self, body: Any) -> Usage | None:
        if self.usage_at is None:
            return None
        at, input_key, output_key = self.usage_at
        usage = as_dict(body).get(at)
        if not isinstance(usage, dict):
            return None
        return Usage(as_int(usage.get(input_key)), as_int(usage.get(output_key)))

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
        return self.text_field.read(event) if self.text_field else None

    def event_with_text(self, event: SSEEvent, text: str) -> SSEEvent:
        return self.text_field.write(event, text) if self.text_field else event

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
        return self.tool_args_field.read(event) if self.tool_args_field else None

    def event_with_tool_name(self, event: SSEEvent, name: str) -> SSEEvent:
        return self.tool_name_field.write(event, name) if self.tool_name_field else event

    def event_with_tool_args(self, event: SSEEvent, arguments: str) -> SSEEvent:
        field = self.tool_args_field
        return field.write(event, arguments) if field else event

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
