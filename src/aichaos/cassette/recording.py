"""Recording: a tap on each exchange with a real upstream, written as one cassette line.

The exchange life (`aichaos.exchange`) tells a tap when it sends the request upstream,
the answer's head, each chunk as it arrives and how the answer ended; the tap then writes
the exchange, redacted (`redaction`), to `<directory>/<backend>.jsonl`. Event streams are
cut into events (at the blank line that ends each, whatever the line ending), each with
the seconds since the previous one, so a replay keeps the stream's timing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aichaos.cassette import redaction
from aichaos.cassette.format import SUFFIX, Interaction
from aichaos.paths import creation_problem
from aichaos.wire.exchange import RequestInfo

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n")
_NOT_RECORDED = "x-aichaos-proxy-error"  # an answer the proxy made up: the upstream was down
_CLIENT_ENDINGS = frozenset(
    {"cancelled"}
)  # the client (or aichaos stopping) ended it, not the upstream
_log = logging.getLogger("aichaos.cassette")


def record_dir_problem(directory: Path) -> str | None:
    """Why exchanges could not be recorded in `directory` (None: they can). Creates nothing:
    the directory, or the nearest folder above it that exists, must be a writable folder."""
    problem = creation_problem(directory)
    return f"{directory}: {problem}, so no cassette can be written there" if problem else None


class CassetteWriter:
    """Appends exchanges to the cassette files of one directory (thread-safe)."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.perf_counter) -> None:
        self.directory = directory
        self.clock = clock
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def tap(self, backend: str, provider: str, info: RequestInfo) -> CassetteTap:
        """A tap for one exchange of `backend` (see `CassetteTap`)."""
        return CassetteTap(self, backend, provider, info)

    def write(self, interaction: Interaction) -> None:
        """Append one exchange. A write that fails (disk full, directory gone) is logged and
        never fails the exchange it records: the client already has its answer."""
        line = interaction.to_line() + "\n"
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", interaction.backend or "exchanges")
        with self._lock:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                with (self.directory / f"{name}{SUFFIX}").open("a", encoding="utf-8") as out:
                    out.write(line)
            except OSError as exc:
                self.failed += 1
                _log.error("aichaos: cannot record to %s: %s", self.directory, exc)
                return
            self.written += 1


class CassetteTap:
    """What one exchange received from its upstream; written once the answer ends."""

    def __init__(
        self, writer: CassetteWriter, backend: str, provider: str, info: RequestInfo
    ) -> None:
        self.writer, self.backend, self.provider, self.info = writer, backend, provider, info
        self._sent = self._last = 0.0
        self._after = 0.0
        self._status: int | None = None
        self._headers: list[tuple[str, str]] = []
        self._events: list[tuple[float, bytes]] | None = None
        self._pending = b""
        self._body: list[bytes] = []

    def fetching(self) -> None:
        """The request goes upstream now."""
        self._sent = self.writer.clock()

    def head(self, status: int, headers: list[tuple[str, str]]) -> None:
        """The answer's status and headers arrived."""
        now = self.writer.clock()
        self._after, self._last = now - self._sent, now
        self._status, self._headers = status, headers
        names = {name.lower(): value for name, value in headers}
        encoded = names.get("content-encoding", "identity").lower() not in ("", "identity")
        if "text/event-stream" in names.get("content-type", "") and not encoded:
            self._events = []

    def chunk(self, data: bytes) -> None:
        """Body bytes arrived."""
        if self._events is None:
            self._body.append(data)
            return
        self._pending += data
        now = self.writer.clock()
        events, self._pending = _complete_events(self._pending)
        for event in events:
            self._events.append((now - self._last, event))
            self._last = now

    def end(self, outcome: str) -> None:
        """The answer ended (`outcome`: `aichaos.records.Outcome`); write it unless nothing
        came from the upstream."""
        if (
            self._status is None
            or outcome in _CLIENT_ENDINGS
            or any(k.lower() == _NOT_RECORDED for k, _ in self._headers)
        ):
            return
        events = self._events
        if events is not None and self._pending:
            events.append((self.writer.clock() - self._last, self._pending))  # cut mid-event
        info = self.info
        self.writer.write(
            Interaction(
                method=info.method,
                path=info.path,
                query=redaction.query(info.query),
                request_headers=redaction.request_headers(info.headers),
                request_body=_request_body(info),
                status=self._status,
                headers=redaction.answer_headers(self._headers),
                after=self._after,
                body=None if events is not None else redaction.text(b"".join(self._body)),
                events=None
                if events is None
                else [(delay, redaction.text(data)) for delay, data in events],
                outcome=outcome,
                backend=self.backend,
                provider=self.provider,
                recorded=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )


def _complete_events(data: bytes) -> tuple[list[bytes], bytes]:
    """The whole events at the start of `data` (each with the blank line that ends it), and
    the rest."""
    events = []
    while match := _EVENT_END.search(data):
        events.append(data[: match.end()])
        data = data[match.end() :]
    return events, data


def split_events(data: bytes) -> list[bytes]:
    """An event stream's text cut into its events (a last one without its end kept)."""
    events, rest = _complete_events(data)
    return [*events, rest] if rest else events


def _request_body(info: RequestInfo) -> Any:
    if not info.body:
        return None
    data = info.json
    if data is not None:
        return redaction.value(data)
    return redaction.value(info.body.decode("utf-8", "replace"))


__all__ = ["CassetteTap", "CassetteWriter", "record_dir_problem", "split_events"]
