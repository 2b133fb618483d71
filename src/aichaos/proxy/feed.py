"""What a running proxy did, for a follower (`aichaos run --proxy`): two cursor-read feeds.

    GET /_aichaos/attempts?after=SEQ[&limit=N]   finished upstream attempts
    GET /_aichaos/events?after=SEQ[&limit=N]     fault changes: added, removed, cleared,
                                                 paused, resumed

Each record has a `seq` (1, 2, ... per feed and proxy process) and a wall-clock time
(`time.time()` seconds: `at` for events, `started_at` for attempts), so a follower on
the same machine places them on its own timeline. An answer is

    {"proxy": ID, "records": [...], "last": SEQ, "next": SEQ, "dropped": N,
     "in_flight": N}                                  (attempts only: not yet finished)

`next` is the `after` to ask with next time; `proxy` changes when the proxy restarts
(sequence numbers start again). Memory is bounded: each feed keeps its last `capacity`
records (a ring buffer); `dropped` counts the records after `after` that were already
overwritten, so a follower that fell behind knows its picture is incomplete.

Attempt records are the `Attempt` fields (no headers, no bodies) plus what ties one to
its call: `trace_id` (of the request's W3C `traceparent`) and `prompt` (the request's last
user message, clipped, with key-shaped strings redacted). Strings in every record go
through `secret_shapes.scrub`. The prompt is read only while someone follows (a feed was
read in the last `FOLLOW_WINDOW` seconds): a proxy nobody follows pays nothing for it.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aichaos.faults.spec import describe_fault
from aichaos.providers import get_provider
from aichaos.records import Attempt
from aichaos.secret_shapes import scrub
from aichaos.wire.exchange import RequestInfo

CAPACITY = 10_000
MAX_READ = 1_000  # records per answer at most
MAX_PROMPT = 2_000  # characters of the prompt an attempt record carries
FOLLOW_WINDOW = 30.0  # seconds after the last read during which prompts are noted
_TRACEPARENT_TRACE = slice(3, 35)  # `00-<32 hex>-...`: the trace id


_IDENTIFIERS = frozenset({"trace_id"})  # 32 hex like an Azure key, but a W3C trace id
_FREE_TEXT = ("path", "model", "error", "upstream", "prompt", "call_id")


def _clean(value: Any) -> Any:
    """A record with key-shaped strings redacted (nested lists and mappings included)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: v if k in _IDENTIFIERS else _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


class Feed:
    """A bounded log of records, read by cursor (thread-safe)."""

    def __init__(self, capacity: int = CAPACITY, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = itertools.count(1)
        self._last = 0
        self._lock = threading.Lock()
        self.clock = clock
        self.read_at = float("-inf")  # when a follower last read (self.clock())

    def append(self, record: dict[str, Any]) -> int:
        with self._lock:
            self._last = next(self._seq)
            self._records.append({"seq": self._last, **record})
            return self._last

    @property
    def following(self) -> bool:
        return self.clock() - self.read_at < FOLLOW_WINDOW

    def read(self, after: int, limit: int = MAX_READ) -> dict[str, Any]:
        """The records with `seq > after` (at most `limit`), and how many of them were lost."""
        self.read_at = self.clock()
        with self._lock:
            last = self._last
            first = self._records[0]["seq"] if self._records else last + 1
            after = min(max(after, 0), last)
            dropped = max(0, first - after - 1)
            start = max(0, after + 1 - first)
            count = max(0, min(limit, MAX_READ))
            records = list(itertools.islice(self._records, start, start + count))
        cursor = records[-1]["seq"] if records else max(after, first - 1)
        return {"records": records, "last": last, "next": cursor, "dropped": dropped}


class ProxyFeeds:
    """The attempts and fault-change feeds of one proxy, and the hooks that fill them."""

    def __init__(self, capacity: int = CAPACITY, clock: Callable[[], float] = time.time) -> None:
        self.id = secrets.token_hex(6)  # tells a follower the proxy it reads was restarted
        self.attempts = Feed(capacity, clock)
        self.events = Feed(capacity, clock)
        self.clock = clock
        # perf_counter -> wall clock, for attempt start times (both read now, once)
        self._wall_offset = clock() - time.perf_counter()
        self._notes: dict[int, tuple[str | None, str | None]] = {}

    # --- attempts ---------------------------------------------------------------
    def request_hook(self, info: RequestInfo, attempt: Attempt) -> None:
        """A `Session` request hook: what ties the attempt to its call, kept until it ends."""
        if not self.attempts.following:
            return  # nobody follows: no work on the request's path
        value = info.headers.get("traceparent")
        trace = value[_TRACEPARENT_TRACE].lower() if value and len(value) >= 55 else None
        prompt = None
        dialect = get_provider(info.provider).dialect_for(info.method, info.path)
        if dialect is not None and isinstance(info.json, dict):
            prompt = dialect.read_prompt(info.json).last_user[:MAX_PROMPT] or None
        self._notes[id(attempt)] = (trace, prompt)

    def attempt_finished(self, attempt: Attempt) -> None:
        """A `Recorder` listener: the finished attempt goes into the feed (while followed)."""
        note = self._notes.pop(id(attempt), None)
        if note is None and not self.attempts.following:
            return
        trace, prompt = note or (None, None)
        record = dict(vars(attempt))  # not asdict(): a deep copy costs 5x as much
        record["faults"] = list(attempt.faults)
        record["started_at"] = round(record.pop("started") + self._wall_offset, 6)
        record["trace_id"], record["prompt"] = trace, prompt
        for key in _FREE_TEXT:  # the fields that carry text from outside (the rest are names)
            value = record.get(key)
            if isinstance(value, str):
                record[key] = scrub(value)
        self.attempts.append(record)

    # --- fault changes ---------------------------------------------------------
    def fault_added(self, fault_id: str, armed_tag: str, fault: Any) -> None:
        window = fault.window
        self._event(
            "added",
            {
                "id": fault_id,
                "label": armed_tag,
                "kind": fault.kind,
                "backend": fault.backend,
                "window": None if window is None else {"start": window.start, "end": window.end},
                "spec": describe_fault(fault),
            },
        )

    def fault_removed(self, fault_id: str, label: str) -> None:
        self._event("removed", {"id": fault_id, "label": label})

    def cleared(self, faults: list[tuple[str, str]]) -> None:
        self._event("cleared", {"faults": [{"id": i, "label": label} for i, label in faults]})

    def paused(self, paused: bool) -> None:
        self._event("paused" if paused else "resumed", {})

    def _event(self, action: str, detail: dict[str, Any]) -> None:
        self.events.append(_clean({"at": round(self.clock(), 6), "action": action, **detail}))

    def read(self, feed: Feed, after: int, limit: int) -> dict[str, Any]:
        return {"proxy": self.id, **feed.read(after, limit)}


__all__ = ["CAPACITY", "Feed", "ProxyFeeds"]
