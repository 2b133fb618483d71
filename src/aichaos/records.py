"""Records of every upstream attempt, tied to the logical call that caused it.

A *call* is one invocation of the system under test (one request of the load);
an *attempt* is one HTTP request that reached a backend on its behalf. Retries
and fallbacks show up as several attempts of one call. The call in progress is
carried in a context variable, so attempts made deep inside an SDK (and its
retries) are attributed without any help from the app.

Records hold no headers and no bodies: secrets cannot leak through them.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


def error_name(exc: BaseException) -> str:
    """The error class as its users know it: `openai.RateLimitError`, `httpx.ReadTimeout`,
    `ValueError` (builtins without a prefix). Attempts and call records both use it."""
    cls = type(exc)
    root = cls.__module__.split(".", 1)[0]
    return cls.__name__ if root == "builtins" else f"{root}.{cls.__name__}"


Outcome = Literal[
    "complete",
    "connection_dropped",
    "stream_error_event",
    "stream_incomplete",
    "stalled",
    "cancelled",
]
"""How an attempt's answer ended (the contract's names). Only ``complete`` is ok."""

_call_ids = itertools.count(1)


@dataclass
class Attempt:
    """One HTTP request to a backend, as injected and as answered."""

    backend: str
    provider: str
    method: str
    path: str
    model: str | None
    stream: bool
    call_id: str | None = None
    faults: list[str] = field(default_factory=list)
    status: int | None = None
    error: str | None = None  # what the client saw instead of a complete answer
    started: float = 0.0  # time.perf_counter() when the attempt began
    headers_at: float | None = None  # seconds from start to the response head
    ttft: float | None = None  # seconds from start to the first token
    duration: float | None = None  # seconds from start to the end of the body
    input_tokens: int | None = None
    output_tokens: int | None = None
    upstream: str = "mock"
    # How the answer ended; None until the exchange life sets it (see `Outcome`).
    outcome: Outcome | None = None
    # Answered from a cassette (`upstream: replay:DIR`): "hit", or "miss" (no recording matched).
    replay: Literal["hit", "miss"] | None = None

    @property
    def ok(self) -> bool:
        """A complete answer with a 2xx status (not while the answer is still under way)."""
        return self.outcome == "complete" and self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallScope:
    """The logical call attempts are attributed to."""

    id: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def served_by(self) -> str | None:
        """The backend of the last complete 2xx answer the call got, if any."""
        for attempt in reversed(self.attempts):
            if attempt.ok:
                return attempt.backend
        return None


CURRENT_CALL: ContextVar[CallScope | None] = ContextVar("aichaos_call", default=None)
"""The call the current task or thread's attempts belong to (`call_scope` sets it; the
in-process socket redirection and the loopback proxy carry it across to the proxy's task)."""


def current_call() -> CallScope | None:
    """The `CallScope` of the current task or thread, or None outside `call_scope`."""
    return CURRENT_CALL.get()


@contextlib.contextmanager
def call_scope(call_id: str | None = None) -> Iterator[CallScope]:
    """Attribute every attempt made inside the block (this task or thread) to one call."""
    scope = CallScope(call_id or f"call-{next(_call_ids)}")
    token = CURRENT_CALL.set(scope)
    try:
        yield scope
    finally:
        CURRENT_CALL.reset(token)


class Recorder:
    """Collects attempts (thread-safe) and tells listeners as they finish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._open: set[int] = set()  # ids of attempts begun and not yet finished
        self.attempts: list[Attempt] = []
        self.listeners: list[Callable[[Attempt], None]] = []

    def begin(self, attempt: Attempt) -> None:
        scope = CURRENT_CALL.get()
        if scope is not None:
            attempt.call_id = scope.id
            scope.attempts.append(attempt)
        with self._lock:
            self.attempts.append(attempt)
            self._open.add(id(attempt))

    def finish(self, attempt: Attempt) -> None:
        for listener in list(self.listeners):
            listener(attempt)
        with self._lock:
            self._open.discard(id(attempt))
            if not self._open:
                self._settled.notify_all()

    def settle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every attempt begun so far has finished.

        For readers outside the exchange's thread: a client of the proxy has its answer
        as soon as the last byte is sent, a moment before the proxy records how it
        ended. Returns False if attempts are still open when the time is up."""
        with self._settled:
            return self._settled.wait_for(lambda: not self._open, timeout)

    def clear(self) -> None:
        with self._lock:
            self.attempts = []
