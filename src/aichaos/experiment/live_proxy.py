"""`aichaos run FILE --proxy URL`: a run that follows an already running `aichaos proxy`.

The app under test sends its model calls through that proxy (a game day's set-up); the run
drives load against the app as usual and, through the proxy's admin API:

* reads the proxy's finished upstream attempts (`GET /_aichaos/attempts?after=SEQ`) into
  the run's recorder, so attribution, checks and reports see them as if the run's own
  proxy had carried them (each record's `traceparent` trace id and `x-aichaos-call` tie it
  to its call exactly; the request's last user message, for inference otherwise);
* reads every fault change (`GET /_aichaos/events?after=SEQ`: added, removed, cleared,
  paused, resumed), made by anyone (`aichaos fault ...` from a second terminal), into the
  run's events; the faults already in the proxy at the start are noted too;
* adds the run's own `faults:` at the start of the inject phase (their windows count from
  then) and removes them when it ends, and on stop_when, Ctrl-C, a crash of the target or
  of the run.

Clock: the proxy stamps records with its wall clock (`time.time()`); the run converts them
to its own timeline with its own wall clock. Both are meant to run on one machine (one
clock); across machines, their clocks must agree to well under the run's call durations.

A proxy that cannot be reached, refuses the token, or does not serve a backend the run's
faults name is refused before any load (`LiveProxyError`, exit 2). When the proxy dropped
records before the run read them (its feeds keep the last 10,000 each) or restarted during
the run, `lost` says so and the checks that read attempts are INCONCLUSIVE.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from aichaos.experiment.errors import ExperimentError, Problem
from aichaos.faults.base import Fault
from aichaos.faults.spec import describe_fault, unknown_backend
from aichaos.records import Attempt
from aichaos.suggest import did_you_mean
from aichaos.units import format_duration

ADMIN = "/_aichaos"
TIMEOUT = 5.0  # seconds for one admin request (the proxy answers these at once)
_ATTEMPT_FIELDS = frozenset(Attempt.__dataclass_fields__) - {"started"}


class LiveProxyError(ExperimentError):
    """The proxy to follow cannot be used (nothing was run)."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url  # before the base class formats the message
        super().__init__([Problem(message, ("--proxy",))])

    def format(self) -> str:
        return f"--proxy {self.url}: {self.problems[0].message}"


def admin_base(url: str) -> str:
    """The admin API's base URL from the proxy's URL (with or without `/_aichaos`)."""
    base = url.strip().rstrip("/")
    return base if base.endswith(ADMIN) else base + ADMIN


@dataclass
class LiveRecord:
    """An attempt read from the proxy, and what ties it to its call."""

    attempt: Attempt
    trace_id: str | None
    prompt: str | None


@dataclass
class Poll:
    """What one read of the feeds brought."""

    attempts: list[LiveRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0


class LiveProxy:
    """The admin client of one run: connect, follow, add and remove the run's faults."""

    def __init__(self, url: str, token: str | None, client: httpx.AsyncClient) -> None:
        self.url, self.token, self.client = url, token, client
        self.base = admin_base(url)
        self.backends: dict[str, str] = {}  # name -> the proxy's URL for it
        self.proxy_ids: dict[str, str | None] = {}  # per feed: which proxy process it is
        self.cursors = {"attempts": 0, "events": 0}
        self.lost: list[str] = []  # why the records are incomplete, if they are
        self.held: list[str] = []  # ids of the run's own faults in the proxy
        self.present: list[dict[str, Any]] = []  # faults in the proxy when the run began
        # time.time() - time.perf_counter(): proxy wall times -> this process's perf_counter
        self.wall_offset = time.time() - time.perf_counter()

    # --- talking to the admin API -----------------------------------------------
    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"content-type": "application/json"}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        content = None if body is None else json.dumps(body).encode()
        response = await self.client.request(
            method, self.base + path, content=content, headers=headers, timeout=TIMEOUT
        )
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200] or response.reason_phrase
            if response.status_code == 401:
                message += " (give --admin-token or set AICHAOS_ADMIN_TOKEN)"
            raise LiveProxyError(
                self.url, f"the admin API answered {response.status_code}: {message}"
            )
        return response.json()

    async def connect(self, fault_backends: Sequence[str]) -> None:
        """Check the proxy before any load: reachable, token accepted, backends served;
        set the cursors to now. Raises `LiveProxyError`."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LiveProxyError(self.url, "give the proxy's URL, e.g. http://127.0.0.1:8800")
        try:
            self.backends = {
                name: str(entry["url"])
                for name, entry in (await self._request("GET", "/backends")).items()
            }
            faults = await self._request("GET", "/faults")
            attempts = await self._request("GET", "/attempts?limit=0&after=0")
            events = await self._request("GET", "/events?limit=0&after=0")
        except httpx.HTTPError as exc:
            raise LiveProxyError(
                self.url,
                f"cannot reach the proxy's admin API ({type(exc).__name__}: {exc});"
                " is `aichaos proxy` running there?",
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LiveProxyError(self.url, "this is not an aichaos proxy's admin API") from None
        self.proxy_ids = {"attempts": attempts.get("proxy"), "events": events.get("proxy")}
        self.cursors = {"attempts": int(attempts["last"]), "events": int(events["last"])}
        self.present = list(faults.get("faults", []))
        known = list(self.backends)
        for name in fault_backends:
            unknown = unknown_backend(name, known) if name != "*" else None
            if unknown is not None:
                raise LiveProxyError(
                    self.url,
                    f"the run's faults name backend {name!r}{did_you_mean(unknown.nearest)},"
                    f" which the proxy does not serve (it serves: {', '.join(known) or 'none'})",
                )

    async def poll(self) -> Poll:
        """Everything new in both feeds (several reads when much is new)."""
        poll = Poll()
        for feed in ("attempts", "events"):
            while True:
                page = await self._request("GET", f"/{feed}?after={self.cursors[feed]}")
                if self._check(feed, page):  # a new proxy process: read it from its start
                    self.cursors[feed] = 0
                    continue
                self.cursors[feed] = int(page["next"])
                if feed == "attempts":
                    poll.in_flight = int(page.get("in_flight", 0))
                    poll.attempts += [self._attempt(r) for r in page["records"]]
                else:
                    poll.events += [self._event(r) for r in page["records"]]
                if int(page["next"]) >= int(page["last"]):
                    break
        return poll

    def _check(self, feed: str, page: dict[str, Any]) -> bool:
        """Note records lost to a restart (True: read again from 0) or overwritten."""
        if page.get("proxy") != self.proxy_ids.get(feed):
            self.lost.append(f"the proxy restarted during the run (its {feed} began again)")
            self.proxy_ids[feed] = page.get("proxy")
            return True
        if page.get("dropped"):
            self.lost.append(
                f"the proxy dropped {page['dropped']} {feed} records before the run read them"
                " (it keeps the last 10,000)"
            )
        return False

    def _attempt(self, record: dict[str, Any]) -> LiveRecord:
        fields = {k: v for k, v in record.items() if k in _ATTEMPT_FIELDS}
        attempt = Attempt(**fields, started=float(record["started_at"]) - self.wall_offset)
        return LiveRecord(attempt, record.get("trace_id"), record.get("prompt"))

    def _event(self, record: dict[str, Any]) -> dict[str, Any]:
        """A fault change, `at` on this process's perf_counter timeline."""
        return {**record, "at": float(record["at"]) - self.wall_offset}

    # --- the run's own faults -----------------------------------------------------
    async def add(self, faults: Sequence[Fault]) -> list[str]:
        """Add the run's faults; their windows count from now."""
        answer = await self._request("POST", "/faults", [describe_fault(f) for f in faults])
        ids = [str(i) for i in answer["added"]]
        self.held += ids
        return ids

    async def fault_stats(self) -> list[dict[str, Any]]:
        """The proxy's counters of the faults the run holds."""
        listing = await self._request("GET", "/faults")
        return [f for f in listing.get("faults", []) if f.get("id") in self.held]

    async def remove(self) -> list[str]:
        """Remove the run's faults (those still there); returns what could not be removed."""
        failed = []
        for fault_id in list(self.held):
            try:
                await self._request("DELETE", f"/faults/{fault_id}")
            except LiveProxyError as exc:
                if "404" not in str(exc.problems[0].message):  # removed by someone else: fine
                    failed.append(f"{fault_id}: {exc.problems[0].message}")
                    continue
            except httpx.HTTPError as exc:
                failed.append(f"{fault_id}: {type(exc).__name__}")
                continue
            self.held.remove(fault_id)
        return failed


def describe_event(event: dict[str, Any]) -> str:
    """One fault change as an events line: `proxy: fault f3 added: outage on openai ...`."""
    action = event.get("action")
    if action in ("paused", "resumed"):
        return f"proxy: injection {action}" + (" (kill switch)" if action == "paused" else "")
    if action == "cleared":
        ids = ", ".join(f"{f['id']} {f['label']}" for f in event.get("faults", []))
        return f"proxy: every fault removed ({ids})"
    what = f"proxy: fault {event.get('id')} {action}: {event.get('label')}"
    if action == "added":
        backend = event.get("backend")
        backends = ", ".join(backend) if isinstance(backend, list) else backend
        what += f" on {backends}"
        window = event.get("window")
        if window:
            end = window.get("end")
            until = format_duration(end) if end is not None else "on"
            what += f", window {format_duration(window.get('start') or 0)}-{until} from now"
    return what


__all__ = ["LiveProxy", "LiveProxyError", "LiveRecord", "Poll", "admin_base", "describe_event"]
