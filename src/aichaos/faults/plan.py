"""What the faults decided for one request: the plan every injection point carries out.

A plan is data. One exchange life (`aichaos.exchange.driver.ExchangeLife`) carries it
out, shaping the answer through `aichaos.faults.shaping`; the in-process transports, the
proxy and the mock server only interpret that life's actions, so fault logic is never
written twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aichaos.providers.base import Dialect
from aichaos.providers.provider import Provider
from aichaos.wire.exchange import Abort, Hang, Pause, Reply, RequestInfo
from aichaos.wire.sse import SSEEvent

StreamOut = SSEEvent | Pause | Hang | Abort
"""What a stream edit may emit: events, pauses, or a connection failure."""


@dataclass
class EditContext:
    """What a response edit may need to know about the exchange."""

    req: RequestInfo
    provider: Provider
    dialect: Dialect | None
    headers: Sequence[tuple[str, str]] = ()  # the answer's headers, as the client gets them

    def dialect_keepalive(self) -> SSEEvent | None:
        """The provider's keep-alive event (an SSE comment when there is no dialect); None
        for providers that send none (Gemini)."""
        if self.dialect is not None:
            return self.dialect.keepalive_event()
        return SSEEvent(raw=b": keep-alive\n\n", comment_only=True)


class StreamEdit(ABC):
    """Acts on a live SSE stream one event at a time (never buffers the stream).

    A new instance is made for every response, so it may keep state.
    """

    ends_stream: bool = False  # set once the edit has ended the stream early

    @abstractmethod
    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        """What to send instead of `event` (often `[event]`)."""

    def on_end(self) -> list[StreamOut]:
        """What to send when the upstream stream ends."""
        return []


BodyEdit = Callable[
    [EditContext, int, list[tuple[str, str]], bytes], tuple[int, list[tuple[str, str]], bytes]
]
"""Rewrites a complete non-streaming response: (ctx, status, headers, body) -> same."""


@dataclass
class Plan:
    """The faults' decision for one request.

    Order of execution (the exchange life's): wait `delay` (seconds); then either fail the
    connection (`failure`), answer with `reply` without calling the upstream, or call the
    upstream (or the mock) and shape its answer: `header_edits`, then `body_edits`
    (non-streaming 2xx) or the edits of `stream_edit_factories` (2xx event streams), and
    cut it `abort_after_bytes` in.
    """

    req: RequestInfo
    provider: Provider
    dialect: Dialect | None
    faults: list[str] = field(default_factory=list)
    delay: float = 0.0
    failure: Abort | Hang | None = None
    reply: Reply | None = None
    body_edits: list[BodyEdit] = field(default_factory=list)
    stream_edit_factories: list[Callable[[EditContext], StreamEdit]] = field(default_factory=list)
    abort_after_bytes: int | None = None  # reset the connection this far into the body
    header_edits: list[Callable[[list[tuple[str, str]]], list[tuple[str, str]]]] = field(
        default_factory=list
    )  # applied to a 2xx answer's headers

    @property
    def terminal(self) -> bool:
        """Whether the upstream will not be called."""
        return self.failure is not None or self.reply is not None

    @property
    def context(self) -> EditContext:
        return EditContext(self.req, self.provider, self.dialect)

    def context_of(self, headers: Sequence[tuple[str, str]]) -> EditContext:
        """The context of an answer with these headers (an in-band error names its request id)."""
        return EditContext(self.req, self.provider, self.dialect, headers)

    @property
    def edits_response(self) -> bool:
        return bool(
            self.body_edits
            or self.stream_edit_factories
            or self.header_edits
            or self.abort_after_bytes is not None
        )
