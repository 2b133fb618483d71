"""Prometheus metrics fed from the attempt records (`Recorder` listeners), never from the
exchange code: what the journal records is what the metrics count.

Names and labels follow Prometheus conventions (counters end in `_total`, durations are
`_seconds`); docs/observability.md lists them. Every `Metrics` has its own registry, so
several can live in one process (tests, a run's proxy beside the CLI's).

    metrics = Metrics()
    metrics.attach(recorder)                 # counts every finished attempt
    body, content_type = metrics.exposition()   # the text format, for a scrape
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from aichaos.records import Attempt, Recorder

if TYPE_CHECKING:
    from aichaos.intercept.session import Session

# LLM answers take from milliseconds (an injected error) to minutes (a long stream).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

InFlight = Callable[[], Mapping[str, int]]
"""Upstream attempts in flight by backend, read at scrape time."""


def fault_kind(label: str) -> str:
    """The kind of a fault record label: `rate_limit(tokens)` -> `rate_limit`."""
    return label.partition("(")[0]


class _InFlightCollector(Collector):
    def __init__(self, source: InFlight) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "aichaos_upstream_attempts_in_flight",
            "Upstream attempts begun and not yet finished.",
            labels=["backend"],
        )
        for backend, count in sorted(self.source().items()):
            family.add_metric([backend], count)
        yield family


class Metrics:
    """The aichaos metrics of one proxy or run, in a registry of their own.

    `in_flight` gives the attempts in flight by backend at scrape time (the proxy reads its
    counters); without it, the metrics count what `track(session)` sees begin and finish.
    `run`: also the metrics of a run's calls and phases (`aichaos_calls_*`, `aichaos_phase`);
    a proxy sees requests, not calls, and exposes none of them.
    """

    def __init__(self, in_flight: InFlight | None = None, *, run: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        runs = registry if run else None  # kept, never exposed, without a run
        self.attempts = Counter(
            "aichaos_upstream_attempts",
            "Upstream attempts (requests to a backend) finished, by HTTP status code"
            " ('none' when no response head arrived) and answer outcome.",
            ["backend", "code", "outcome"],
            registry=registry,
        )
        self.faults = Counter(
            "aichaos_faults_injected",
            "Faults applied to upstream attempts, by fault kind.",
            ["backend", "kind"],
            registry=registry,
        )
        self.duration = Histogram(
            "aichaos_upstream_attempt_duration_seconds",
            "Time from an attempt's start to the end of its answer.",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "aichaos_upstream_time_to_first_token_seconds",
            "Time from an attempt's start to its first token.",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.calls = Counter(
            "aichaos_calls",
            "Calls to the target finished during a run, by phase and result (ok, failed).",
            ["phase", "result"],
            registry=runs,
        )
        self.call_duration = Histogram(
            "aichaos_call_duration_seconds",
            "Duration of the target's calls during a run.",
            ["phase"],
            buckets=LATENCY_BUCKETS,
            registry=runs,
        )
        self.calls_in_flight = Gauge(
            "aichaos_calls_in_flight",
            "Calls to the target begun and not yet finished during a run.",
            registry=runs,
        )
        self.phase = Gauge(
            "aichaos_phase",
            "1 for the run's current phase, 0 for the phases it has been through.",
            ["phase"],
            registry=runs,
        )
        self._lock = threading.Lock()
        self._phase: str | None = None
        self._open: dict[int, str] = {}  # id(attempt) -> backend, for `track`
        self._counters: dict[tuple[str, ...], Any] = {}  # label values -> counter child
        self._timings: dict[str, tuple[Any, Any]] = {}  # backend -> (duration, ttft) children
        registry.register(_InFlightCollector(in_flight or self._in_flight))

    def attach(self, recorder: Recorder) -> None:
        """Count every attempt `recorder` finishes from now on."""
        recorder.listeners.append(self.attempt_finished)

    def detach(self, recorder: Recorder) -> None:
        if self.attempt_finished in recorder.listeners:
            recorder.listeners.remove(self.attempt_finished)

    def track(self, session: Session) -> None:
        """Count `session`'s attempts in flight (a request hook) as well as finished ones."""
        session.request_hooks.append(self.attempt_began)
        self.attach(session.recorder)

    def untrack(self, session: Session) -> None:
        if self.attempt_began in session.request_hooks:
            session.request_hooks.remove(self.attempt_began)
        self.detach(session.recorder)

    def attempt_began(self, info: object, attempt: Attempt) -> None:
        with self._lock:
            self._open[id(attempt)] = attempt.backend

    def _in_flight(self) -> dict[str, int]:
        with self._lock:
            return dict(Tally(self._open.values()))

    def attempt_finished(self, attempt: Attempt) -> None:
        """Count one finished attempt (a `Recorder` listener; any thread)."""
        if self._open:
            with self._lock:
                self._open.pop(id(attempt), None)
        backend = attempt.backend
        code = "none" if attempt.status is None else str(attempt.status)
        key = (backend, code, attempt.outcome or "unknown")
        counter = self._counters.get(key)
        if counter is None:  # a label lookup costs more than the count itself: keep children
            counter = self._counters[key] = self.attempts.labels(*key)
        counter.inc()
        for label in attempt.faults:
            fault = (backend, fault_kind(label))
            child = self._counters.get(fault)
            if child is None:
                child = self._counters[fault] = self.faults.labels(*fault)
            child.inc()
        timings = self._timings.get(backend)
        if timings is None:
            timings = self._timings[backend] = (
                self.duration.labels(backend),
                self.ttft.labels(backend),
            )
        if attempt.duration is not None:
            timings[0].observe(attempt.duration)
        if attempt.ttft is not None:
            timings[1].observe(attempt.ttft)

    def call_started(self) -> None:
        self.calls_in_flight.inc()

    def call_finished(self, phase: str, ok: bool, duration: float | None) -> None:
        self.calls_in_flight.dec()
        self.calls.labels(phase, "ok" if ok else "failed").inc()
        if duration is not None:
            self.call_duration.labels(phase).observe(duration)

    def phase_started(self, name: str) -> None:
        """Mark `name` as the current phase (the previous one drops to 0)."""
        with self._lock:
            if self._phase is not None:
                self.phase.labels(self._phase).set(0)
            self._phase = name
            self.phase.labels(name).set(1)

    def run_finished(self) -> None:
        with self._lock:
            if self._phase is not None:
                self.phase.labels(self._phase).set(0)
            self._phase = None

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsServer:
    """Serves `GET /metrics` for a `Metrics` on its own thread (`aichaos run --metrics-port`).

    Port 0 takes a free port (`port` says which). Raises `OSError` when the address
    cannot be bound.
    """

    def __init__(self, metrics: Metrics, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import start_http_server

        self._server, self._thread = start_http_server(port, host, metrics.registry)
        self.host = host
        self.port: int = self._server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["LATENCY_BUCKETS", "Metrics", "MetricsServer", "fault_kind"]
