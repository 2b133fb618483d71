"""The life of one exchange, written once and with no I/O (in the style of h11 and httpcore).

An `ExchangeLife` says what to do next; an interpreter (the sync and async httpx
transports, the proxy, the mock's ASGI app) does it and reports back:

    action = life.send(None)
    while action is not FINISH:
        result = <do action>          # sleep, fetch, read a chunk, write bytes, fail
        action = life.send(result)

Actions: `Wait(seconds)`; `Fail(kind)` (timeout, reset, refused: each interpreter raises its
client library's exception or closes its socket); `FETCH_UPSTREAM` (answer with an
`UpstreamAnswer`); `READ_UPSTREAM` (answer with the next body chunk, None at its end);
`StartAnswer(status, headers)`; `SendBytes(data)`; `FINISH`. The order is the plan's: its
delay, then its connection failure, else its reply, the mock or the upstream; the answer
through the `ResponseShaper`; pauses and failures played as a socket would (the client's
read timeout enforced over silence).

Its commonest course (no fault acts, the answer known now as one body: the mock's) is also
taken in one call, `at_once()`, the life's own shortcut over the same steps, for the
interpreters where stepping costs as much as the answer (docs/performance.md).

The life records its attempt once, however it ends: when it yields `FINISH` or `Fail`, or
when the interpreter reports `failed(kind, error)` (its own I/O failed) or
`abandoned(error)` (the client went away). Each ending is classified as the contract's
`Outcome` (see `outcome`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from types import GeneratorType
from typing import cast

from aichaos.exchange.actions import (
    FETCH_UPSTREAM,
    FINISH,
    READ_UPSTREAM,
    Action,
    Fail,
    FailKind,
    SendBytes,
    StartAnswer,
    UpstreamAnswer,
    UpstreamTap,
    Wait,
)
from aichaos.faults.plan import Plan
from aichaos.faults.shaping import ResponseShaper, TokenBytes, is_event_stream
from aichaos.records import Attempt, Outcome
from aichaos.wire.exchange import Abort, Hang, Part, Pause, Reply

_FOREVER = 365 * 24 * 3600.0
_FAILED: dict[FailKind, Outcome] = {
    "timeout": "stalled",
    "reset": "connection_dropped",
    "refused": "connection_dropped",
}


# --- the client's read timeout over silence ------------------------------------------------
class Silence:
    """How non-data parts play out for a client, as a real socket would.

    Pauses and hangs add up until data arrives; once they reach the client's read timeout
    (None: it has none, or it enforces it itself, as a client over a socket does) the read
    times out. A hang with a limit is the server giving up first.
    """

    def __init__(self, read_timeout: float | None) -> None:
        self.read_timeout = read_timeout
        self.idle = 0.0

    def step(self, part: Pause | Hang | Abort) -> tuple[float, Fail | None]:
        """Seconds to wait, then the failure (None: carry on)."""
        if isinstance(part, Abort):
            if part.reason == "timeout":
                return 0.0, Fail("timeout", "The read operation timed out")
            return 0.0, Fail(part.reason, part.message)
        wanted = part.seconds if isinstance(part, Pause) else part.limit
        timeout = self.read_timeout
        left = None if timeout is None else max(timeout - self.idle, 0.0)
        if left is not None and (wanted is None or wanted >= left):
            return left, Fail("timeout", "The read operation timed out")
        if wanted is None:
            return _FOREVER, None
        self.idle += wanted
        if isinstance(part, Hang):  # the server gave up before the client did
            return wanted, Fail("reset", "Server disconnected without sending a response.")
        return wanted, None


Finished = Callable[[Attempt, Plan, int], None]
"""Told once when an attempt ends: (attempt, plan, tokens used)."""


class ExchangeLife:
    """One exchange from its plan to its recorded outcome. See the module docstring.

    `plan` and `attempt` are None for a bare reply (the mock's ASGI app); `mock` gives the
    embedded mock's (header delay, reply) for a mock backend; `read_timeout` is the
    client's, when the interpreter plays the client's side (in-process).
    """

    def __init__(
        self,
        plan: Plan | None,
        attempt: Attempt | None = None,
        *,
        mock: Callable[[], tuple[float, Reply]] | None = None,
        read_timeout: float | None = None,
        finished: Finished | None = None,
        tap: UpstreamTap | None = None,
    ) -> None:
        self.plan, self.attempt, self._mock, self._finished = plan, attempt, mock, finished
        self.tap = tap
        self.silence = Silence(read_timeout)
        self.shaper: ResponseShaper | None = None
        self.ended = False
        self._waiting = False  # the last action was a wait (a client leaving gave up on it)
        # shaped bytes still to send: an ending metered in them is not delivered (see _play)
        self._holding_back = False
        self._known: tuple[float, Reply] | None = None  # see _answer_now
        # the life, once begun; a GeneratorType (not just a Generator): `_end` asks whether
        # it is running
        self._steps: GeneratorType[Action, object, None] | None = None

    @classmethod
    def of_reply(cls, reply: Reply, header_delay: float = 0.0) -> ExchangeLife:
        """A bare reply played as it is (no plan, no record): the mock's own server."""
        life = cls(None)
        life._known = (header_delay, reply)
        return life

    def send(self, result: object = None) -> Action:
        """The next action, given the result of the last one (None for most)."""
        steps = self._steps
        if steps is None:
            steps = self._steps = cast("GeneratorType[Action, object, None]", self._life())
        action = steps.send(result)
        self._waiting = isinstance(action, Wait)
        if action is FINISH:
            steps.close()  # frees its frame, which refers to self: no cycle for the GC
        return action

    def at_once(self) -> tuple[StartAnswer, bytes] | None:
        """The life's shortcut for its commonest course, taken without stepping: nothing
        before the answer (`_prelude` is empty: no delay, no failure), no fault edits it, it
        is known now (a fault's reply, the mock's with no header delay) and is one body, not
        a stream. Then the life is what playing `StartAnswer(length)`,
        `SendBytes(body, last=True)`, `FINISH` would be, and it returns (head, body): the
        attempt is recorded (the same fields and outcome; its duration ends before the
        interpreter sends them, in one go).

        Call it before the first `send`. None: nothing was sent; play the life with `send`.
        """
        plan = self.plan
        if self._steps is not None or self._prelude() or self.edits_answer:
            return None
        known = self._answer_now()
        if known is None:
            return None  # the upstream's answer
        delay, reply = known
        parts = reply.body
        if delay > 0 or type(parts) is not list or len(parts) != 1:
            return None
        if not isinstance(parts[0], bytes) or is_event_stream(reply.headers):
            return None
        status, headers = reply.status, reply.headers
        self._heard(status)
        shaper = None
        if plan is not None:  # no fault edits the answer: the shaper only meters it
            shaper = self.shaper = ResponseShaper(plan, status, headers)
            status, headers = shaper.status, shaper.headers
        out = _shaped(parts, shaper)
        self._delivered(any(isinstance(part, TokenBytes) for part in out))
        self._end(self.outcome(), None)
        body = _joined([part for part in out if isinstance(part, bytes)])
        return StartAnswer(status, headers, len(body)), body

    @property
    def edits_answer(self) -> bool:
        """Whether a fault edits the answer (its headers, body or events): when it does not,
        an interpreter may pass an upstream's head and body on as they came (the proxy
        sends the upstream's header bytes, and takes a body that arrived whole at once)."""
        return self.plan is not None and self.plan.edits_response

    def _prelude(self) -> list[Part]:
        """What the plan plays before any answer: its delay, then a connection failure."""
        plan = self.plan
        prelude: list[Part] = []
        if plan is not None and plan.delay > 0:
            prelude.append(Pause(plan.delay))
        if plan is not None and plan.failure is not None:
            prelude.append(plan.failure)
        return prelude

    def _answer_now(self) -> tuple[float, Reply] | None:
        """(seconds to wait before its head, the answer) when it comes without the upstream:
        a fault's reply (no wait) or the mock's; None: the upstream answers. Asked once."""
        if self._known is None:
            plan = self.plan
            if plan is not None and plan.reply is not None:
                self._known = (0.0, plan.reply)
            elif self._mock is not None:
                self._known = self._mock()
        return self._known

    def _heard(self, status: int) -> None:
        """The answer's head is known: the attempt's status and time to headers."""
        attempt = self.attempt
        if attempt is not None:
            attempt.status = status
            attempt.headers_at = time.perf_counter() - attempt.started

    # --- how it ended ------------------------------------------------------------
    @property
    def answer_complete(self) -> bool:
        """Whether the answer's finish (or its whole body) went through."""
        shaper = self.shaper
        return shaper is not None and shaper.meter.complete and not self._holding_back

    def failed(self, kind: FailKind, error: str) -> None:
        """The connection failed (`error` is the interpreter's name for it)."""
        self._end(_FAILED[kind], error)

    def abandoned(self, error: str | None) -> None:
        """The client went away before the end: closed the body, disconnected, cancelled.

        `error` None: it had what it came for. Either way, an answer whose end (its final or
        error event) was delivered keeps the outcome that end gives it.
        """
        shaper = self.shaper
        ended = shaper is not None and shaper.meter.ending is not None and not self._holding_back
        if error is None or ended:
            outcome = self.outcome()
            # A client may close as soon as it has the final event (the openai SDK does,
            # before the body's last chunk): it saw the whole answer, not an error.
            self._end(outcome, None if outcome == "complete" else error)
        else:
            self._end("stalled" if self._waiting else "cancelled", error)

    def outcome(self) -> Outcome:
        """How the answer delivered so far ended: an event stream by its last events (the
        provider's final event, an in-band error event, or neither), any other body whole."""
        shaper = self.shaper
        if shaper is None or not shaper.meters_events:
            return "complete"
        ending = shaper.meter.ending
        if ending == "error":
            return "stream_error_event"
        return "complete" if ending == "complete" else "stream_incomplete"

    def _end(self, outcome: Outcome, error: str | None) -> None:
        if self.ended:
            return
        self.ended = True
        steps = self._steps
        if steps is not None and not steps.gi_running:  # ended from outside: see send
            steps.close()
        if self.tap is not None:
            self.tap.end(outcome)
        attempt, plan = self.attempt, self.plan
        if attempt is None or plan is None:
            return
        attempt.duration = time.perf_counter() - attempt.started
        attempt.error, attempt.outcome = error, outcome
        shaper = self.shaper
        if shaper is not None and shaper.meter.usage is not None:
            attempt.input_tokens = shaper.meter.usage.input_tokens
            attempt.output_tokens = shaper.meter.usage.output_tokens
        if self._finished is not None:
            self._finished(attempt, plan, shaper.meter.tokens if shaper is not None else 0)

    # --- the life ------------------------------------------------------------------
    def _life(self) -> Generator[Action, object, None]:
        plan = self.plan
        prelude = self._prelude()
        if prelude and not (yield from self._play(prelude)):
            return
        parts: Iterable[Part] | None = None
        known = self._answer_now()
        if known is not None:  # a fault's reply or the mock's
            delay, reply = known
            if delay > 0:
                yield Wait(delay)
            status, headers, parts = reply.status, reply.headers, reply.parts()
        else:
            if self.tap is not None:
                self.tap.fetching()
            answer = yield FETCH_UPSTREAM
            assert isinstance(answer, UpstreamAnswer)
            if self.tap is not None:
                self.tap.head(answer.status, answer.headers)
                for chunk in answer.body or ():
                    self.tap.chunk(chunk)
            status, headers, parts = answer.status, answer.headers, answer.body
        self._heard(status)
        if plan is None:
            yield from self._answer(status, headers, parts, None)
            return
        shaper = self.shaper = ResponseShaper(plan, status, headers)
        if shaper.buffered:
            chunks: list[bytes] = []
            if parts is None:
                while (piece := (yield from self._read_upstream())) is not None:
                    chunks.append(piece)
            else:
                chunks = [part for part in parts if isinstance(part, bytes)]
            out = shaper.shape_buffered(b"".join(chunks))
            yield from self._answer(shaper.status, shaper.headers, out, None)
            return
        yield from self._answer(shaper.status, shaper.headers, parts, shaper)

    def _answer(
        self,
        status: int,
        headers: list[tuple[str, str]],
        parts: Iterable[Part] | None,
        shaper: ResponseShaper | None,
    ) -> Generator[Action, object, None]:
        """Send the answer: whole when it is one body known now, else part by part."""
        stream = shaper.sends_event_stream if shaper is not None else is_event_stream(headers)
        if parts is not None and not stream:
            out = _shaped(parts, shaper)
            whole = _whole_body(out)
            if whole is not None:
                waits, body = whole
                yield StartAnswer(status, headers, len(body))
                if waits and not (yield from self._play(waits)):
                    return
                self._delivered(any(isinstance(part, TokenBytes) for part in out))
                yield SendBytes(body, last=True)
            else:
                yield StartAnswer(status, headers)
                if not (yield from self._play(out)):
                    return
            self._end(self.outcome(), None)
            yield FINISH
            return
        yield StartAnswer(status, headers)
        if parts is not None:
            # Bytes ready together (no pause between them) go out in one write: each write
            # costs the server about as much as encoding an event (docs/performance.md).
            ready: list[bytes] = []
            size = 0
            for part in parts:
                batch = (
                    [part] if shaper is None or not isinstance(part, bytes) else shaper.feed(part)
                )
                for index, piece in enumerate(batch):
                    if not isinstance(piece, bytes):
                        if ready and not (yield from self._play([_joined(ready)])):
                            return
                        ready, size = [], 0
                        if not (yield from self._play(batch[index:])):
                            return
                        break
                    ready.append(piece)
                    size += len(piece)
                if size >= _BATCH:
                    if not (yield from self._play([_joined(ready)])):
                        return
                    ready, size = [], 0
                if shaper is not None and shaper.ended:
                    break
            if ready and not (yield from self._play([_joined(ready)])):
                return
        else:
            assert shaper is not None
            while (chunk := (yield from self._read_upstream())) is not None:
                if not (yield from self._play(shaper.feed(chunk))):
                    return
                if shaper.ended:
                    break
        if shaper is not None and not (yield from self._play(shaper.end())):
            return
        self._end(self.outcome(), None)
        yield FINISH

    def _read_upstream(self) -> Generator[Action, object, bytes | None]:
        """The upstream body's next chunk (None at its end), shown to the tap."""
        chunk = yield READ_UPSTREAM
        assert chunk is None or isinstance(chunk, bytes)
        if chunk is not None and self.tap is not None:
            self.tap.chunk(chunk)
        return chunk

    def _play(self, parts: list[Part]) -> Generator[Action, object, bool]:
        """Send bytes, wait out pauses, fail on failures; False once the life failed."""
        # The shaper metered these parts (maybe the final event) when it made them: until
        # the last bytes among them are handed out, a client that leaves has not had them.
        last = len(parts) - 1
        while last >= 0 and not (isinstance(parts[last], bytes) and parts[last]):
            last -= 1
        for index, part in enumerate(parts):
            self._holding_back = index < last
            if isinstance(part, bytes):
                if part:
                    self._delivered(isinstance(part, TokenBytes))
                    yield SendBytes(part)
                continue
            seconds, failure = self.silence.step(part)
            if seconds > 0:
                yield Wait(seconds, hang=isinstance(part, Hang))
            if failure is not None:
                yield failure  # the interpreter names it and reports it: see failed()
                return False
        self._holding_back = False
        return True

    def _delivered(self, token: bool) -> None:
        """Bytes go out: silence ends; the first token stamps time-to-first-token."""
        self.silence.idle = 0.0
        attempt = self.attempt
        if token and attempt is not None and attempt.ttft is None:
            attempt.ttft = time.perf_counter() - attempt.started


def _shaped(parts: Iterable[Part], shaper: ResponseShaper | None) -> list[Part]:
    if shaper is None:
        return list(parts)
    out: list[Part] = []
    for part in parts:
        out.extend(shaper.feed(part) if isinstance(part, bytes) else [part])
        if shaper.ended:
            break
    out.extend(shaper.end())
    return out


def _whole_body(parts: list[Part]) -> tuple[list[Part], bytes] | None:
    """(the pauses before it, the body as one piece) when only pauses come before its bytes
    and nothing after them; None otherwise."""
    if len(parts) == 1 and isinstance(parts[0], bytes):
        return [], parts[0]  # the common case: one body, nothing before it
    first = next((i for i, part in enumerate(parts) if isinstance(part, bytes)), len(parts))
    if any(not isinstance(part, Pause) for part in parts[:first]):
        return None
    rest = parts[first:]
    if any(not isinstance(part, bytes) for part in rest):
        return None
    return parts[:first], b"".join(rest)  # type: ignore[arg-type]  # only bytes, checked above


_BATCH = 64 * 1024
"""Most bytes held back to go out in one write (a long unpaced stream is never held whole)."""


def _joined(pieces: list[bytes]) -> bytes:
    """`pieces` as one write; it carries the first token if one of them does."""
    if len(pieces) == 1:
        return pieces[0]
    data = b"".join(pieces)
    return TokenBytes(data) if any(isinstance(p, TokenBytes) for p in pieces) else data
