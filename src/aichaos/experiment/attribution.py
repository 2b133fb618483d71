"""Tying upstream attempts to the target calls that caused them.

Exact: an attempt made inside a call scope (python targets), or whose request
carries the call's `x-aichaos-call` header or the trace id of the call's W3C
`traceparent` (http and command targets: each call carries a fresh one, and apps
instrumented with OpenTelemetry forward it unchanged).

Inferred, for apps that forward nothing: an attempt can only belong to a call
that was in flight when it started (time containment) and, when its request body
holds some of the run's prompts, to a call with one of those prompts. One such
call: the attempt is tied to it. Several: it stays *possible* for each of them,
and the checks that depend on it judge every way it could be (`bounds` below):
they pass or fail only when every way agrees, and are INCONCLUSIVE otherwise.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields

from aichaos.experiment.results import CallRecord
from aichaos.records import Attempt
from aichaos.wire.exchange import RequestInfo

TRACEPARENT = "traceparent"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")

ADVICE = (
    "forward each request's `traceparent` (OpenTelemetry does it) or `x-aichaos-call` header"
    " to the model calls, or run at concurrency 1"
)


def new_traceparent() -> tuple[str, str]:
    """A fresh W3C `traceparent` (version 00, sampled) and its trace id."""
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a `traceparent` value, None when absent or malformed."""
    if not traceparent:
        return None
    found = _TRACEPARENT.match(traceparent.strip().lower())
    return found.group(1) if found else None


@dataclass(frozen=True)
class Note:
    """What one upstream request says about its call."""

    trace_id: str | None
    prompts: frozenset[str]  # the run's prompts found in its body


class RequestNotes:
    """A `Session` request hook: notes each attempt's trace id and the prompts in its body.

    Runs once per upstream request of http and command targets. Only the prompts of the
    calls in flight are looked for (`calls_started` / `call_ended`): an attempt can belong
    to no other call, and the work per request stays bounded by the concurrency.
    """

    def __init__(self, prompts: Iterable[str] = ()) -> None:
        self.in_flight: dict[str, int] = {}  # prompt -> calls in flight with it
        self._needles: dict[str, tuple[bytes, ...]] = {}
        self.notes: dict[int, Note] = {}  # by id(attempt): attempts live as long as the run
        for text in prompts:
            self.call_started(text)

    def call_started(self, prompt: str) -> None:
        if prompt.strip() and prompt not in self._needles:  # the prompt raw and JSON-escaped
            forms = {prompt, json.dumps(prompt)[1:-1], json.dumps(prompt, ensure_ascii=False)[1:-1]}
            self._needles[prompt] = tuple(f.encode() for f in forms)
        self.in_flight[prompt] = self.in_flight.get(prompt, 0) + 1

    def call_ended(self, prompt: str) -> None:
        left = self.in_flight.get(prompt, 0) - 1
        if left > 0:
            self.in_flight[prompt] = left
        else:
            self.in_flight.pop(prompt, None)

    def __call__(self, info: RequestInfo, attempt: Attempt) -> None:
        body = info.body
        found = frozenset(
            text
            for text in list(self.in_flight)
            if any(form in body for form in self._needles.get(text, ()))
        )
        self.notes[id(attempt)] = Note(trace_id_of(info.headers.get(TRACEPARENT)), found)

    def note(self, attempt: Attempt, trace_id: str | None, prompt: str | None) -> None:
        """Note an attempt another process saw (a live proxy): its trace id, and which of
        the run's prompts its request's last user message holds."""
        found = frozenset(t for t in self._needles if prompt and t in prompt)
        self.notes[id(attempt)] = Note(trace_id, found)

    def get(self, attempt: Attempt) -> Note | None:
        return self.notes.get(id(attempt))


@dataclass
class Tally:
    """How the attempts of a run were tied to calls (the journal's `attribution`)."""

    exact: int = 0
    inferred: int = 0
    ambiguous: int = 0  # could belong to several calls
    outside: int = 0  # started when no call that could have made it was in flight
    startup: int = 0  # started before the run's first call: the app's start-up traffic

    def add(self, other: Tally) -> None:
        for count in fields(self):
            setattr(self, count.name, getattr(self, count.name) + getattr(other, count.name))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def attribute(
    calls: Sequence[CallRecord],
    attempts: Iterable[Attempt],
    origin: float,
    notes: RequestNotes | None = None,
    known: Mapping[str, CallRecord] | None = None,
    first_call: float | None = None,
) -> Tally:
    """Tie `attempts` to `calls` (see the module docstring); returns how each was tied.

    `known` are every call of the run by id, for exact ties to calls outside `calls`
    (an attempt a cancelled call still makes later); times: `origin` is the run's
    perf_counter at its start. An attempt no call can own that started before
    `first_call` (seconds from `origin`; inf: no call yet) is start-up traffic.
    """
    by_id = dict(known or {})
    by_id.update((c.id, c) for c in calls)
    by_trace = {c.trace_id: c for c in by_id.values() if c.trace_id}
    tally = Tally()
    for attempt in attempts:
        note = notes.get(attempt) if notes is not None else None
        call = by_id.get(attempt.call_id or "")
        if call is None and note is not None and note.trace_id:
            call = by_trace.get(note.trace_id)
        if call is not None:
            tally.exact += 1
            _tie(call, attempt)
            continue
        candidates = _in_flight(calls, attempt.started - origin)
        if note is not None and note.prompts:
            candidates = [c for c in candidates if c.prompt in note.prompts] or candidates
        if not candidates and first_call is not None and attempt.started - origin < first_call:
            tally.startup += 1
        elif not candidates:
            tally.outside += 1
        elif len(candidates) == 1:
            tally.inferred += 1
            _tie(candidates[0], attempt)
        else:
            tally.ambiguous += 1
            for call in candidates:
                call.possible.append(attempt)
    for call in calls:
        call.attempts.sort(key=lambda a: a.started)
        call.possible.sort(key=lambda a: a.started)
    return tally


def _tie(call: CallRecord, attempt: Attempt) -> None:
    attempt.call_id = call.id
    if not any(a is attempt for a in call.attempts):
        call.attempts.append(attempt)


def _in_flight(calls: Sequence[CallRecord], moment: float) -> list[CallRecord]:
    # Strict: an attempt is recorded after its app sent it, and before the app can answer.
    return [c for c in calls if c.started <= moment and (c.ended is None or moment <= c.ended)]


# --- what the records allow: every way the possible attempts could be shared out ------------


@dataclass(frozen=True)
class Bounds:
    """The least and most a per-call figure can be, over every way of tying attempts."""

    low: float
    high: float

    @property
    def exact(self) -> bool:
        return self.low == self.high


def _end(attempt: Attempt) -> float | None:
    return None if attempt.duration is None else attempt.started + attempt.duration


def served_options(call: CallRecord) -> set[str | None]:
    """Backends that may have served a successful call (None: none of its answers was complete).

    Its own last complete answer, or a later possible one; a successful call that has
    possible complete answers is taken to have had one (its app answered from something).
    """
    if not call.ok:
        return {None}
    own = call.served_by
    last = next((a for a in reversed(call.attempts) if a.ok), None)
    later = {
        a.backend for a in call.possible if a.ok and (last is None or a.started > last.started)
    }
    if own is None and later:
        return set[str | None](later)
    return {own, *later}


def served_label(call: CallRecord, options: set[str | None]) -> str:
    """How reports name who served a call (`unknown`: several backends could have)."""
    if not call.ok:
        return "nobody (failed)"
    if len(options) > 1:
        return "unknown"
    backend = next(iter(options))
    return backend if backend is not None else "no complete answer"


def incomplete_options(call: CallRecord) -> set[bool]:
    """Whether the last upstream answer a successful call's app received may have been incomplete.

    The last answer is the one that ended last. No answer at all: not incomplete (the
    app answered from elsewhere).
    """
    if not call.ok:
        return {False}
    last = last_answer(call.attempts)
    options: set[bool] = {incomplete(last)} if last is not None else set()
    last_end = _end(last) if last is not None else None
    for attempt in call.possible:
        end = _end(attempt)
        if end is not None and (last_end is None or end > last_end):
            options.add(incomplete(attempt))
    return options or {False}


def last_answer(attempts: Iterable[Attempt]) -> Attempt | None:
    """The attempt whose answer ended last (None: none ended)."""
    done = [a for a in attempts if a.duration is not None]
    return max(done, key=lambda a: a.started + (a.duration or 0.0), default=None)


def incomplete(attempt: Attempt) -> bool:
    """Whether an answer ended any other way than complete (see `records.Outcome`)."""
    if attempt.outcome is not None:
        return attempt.outcome != "complete"
    return attempt.error is not None


def attempt_bounds(call: CallRecord) -> Bounds:
    """The fewest and most upstream attempts a call may have caused."""
    return Bounds(len(call.attempts), len(call.attempts) + len(call.possible))


def untied(calls: Sequence[CallRecord]) -> int:
    """Distinct attempts still possible for several of these calls."""
    return len({id(a) for c in calls for a in c.possible})
