"""Live counters of a running proxy, for the admin API and the live view."""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aichaos.records import Attempt, Recorder

_SAMPLES = 2048  # latency samples kept per backend for the percentiles


def percentile(samples: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted `samples` (None when empty)."""
    if not samples:
        return None
    rank = max(1, min(len(samples), round(pct / 100 * len(samples) + 0.5)))
    return samples[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


class Samples:
    """The latest `size` values, kept in a flat array: no object per sample survives the
    burst that produced it (scattered survivors keep a Python process at its peak size)."""

    def __init__(self, size: int = _SAMPLES) -> None:
        self._values = array("d", bytes(8 * size))
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, value: float) -> None:
        self._values[self._next] = value
        self._next = (self._next + 1) % len(self._values)
        self._count = min(self._count + 1, len(self._values))

    def sorted(self) -> list[float]:
        return sorted(self._values[: self._count])


@dataclass
class BackendStats:
    """What went through one backend since the proxy started."""

    requests: int = 0
    inflight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    latency: Samples = field(default_factory=Samples)
    ttft: Samples = field(default_factory=Samples)

    def snapshot(self) -> dict[str, Any]:
        latency, ttft = self.latency.sorted(), self.ttft.sorted()
        return {
            "requests": self.requests,
            "inflight": self.inflight,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "outcomes": dict(self.outcomes),
            "errors": dict(self.errors),
            "faults": dict(self.faults),
            "latency_ms": {f"p{p}": _ms(percentile(latency, p)) for p in (50, 95, 99)},
            "ttft_ms": {f"p{p}": _ms(percentile(ttft, p)) for p in (50, 95, 99)},
        }


class ProxyStats:
    """Counters per backend; `listeners` hear of every finished attempt (the line view)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.backends: dict[str, BackendStats] = {}
        self.upstream_errors = 0
        self.listeners: list[Callable[[Attempt], None]] = []
        self._lock = threading.Lock()  # the view may read from another thread

    def _backend(self, name: str) -> BackendStats:
        stats = self.backends.get(name)
        if stats is None:
            stats = self.backends[name] = BackendStats()
        return stats

    def opened(self, backend: str) -> None:
        with self._lock:
            self._backend(backend).inflight += 1

    def closed(self, attempt: Attempt) -> None:
        with self._lock:
            stats = self._backend(attempt.backend)
            stats.inflight -= 1
            stats.requests += 1
            if attempt.status is not None:
                stats.statuses[attempt.status] += 1
            if attempt.outcome is not None:
                stats.outcomes[attempt.outcome] += 1
            if attempt.error is not None:
                stats.errors[attempt.error] += 1
            for label in attempt.faults:
                stats.faults[label] += 1
            if attempt.duration is not None:
                stats.latency.append(attempt.duration)
            if attempt.ttft is not None:
                stats.ttft.append(attempt.ttft)
        for listener in list(self.listeners):
            listener(attempt)

    def inflight_by_backend(self) -> dict[str, int]:
        with self._lock:
            return {name: s.inflight for name, s in self.backends.items()}

    @property
    def inflight(self) -> int:
        with self._lock:
            return sum(s.inflight for s in self.backends.values())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            backends = {name: s.snapshot() for name, s in sorted(self.backends.items())}
            return {
                "uptime_s": round(time.time() - self.started, 3),
                "requests": sum(s["requests"] for s in backends.values()),
                "inflight": sum(s["inflight"] for s in backends.values()),
                "upstream_errors": self.upstream_errors,
                "backends": backends,
            }


class BoundedRecorder(Recorder):
    """A recorder that keeps only the latest `keep` attempts (a long-running proxy).

    The experiment runner's recorder keeps every attempt for its checks; a proxy
    left running through a game day must not grow without bound (`aichaos proxy`
    keeps none: its view and admin API read the counters).
    """

    def __init__(self, keep: int = 1000) -> None:
        super().__init__()
        self.keep = keep

    def begin(self, attempt: Attempt) -> None:
        super().begin(attempt)
        if len(self.attempts) >= 2 * self.keep:
            with self._lock:
                del self.attempts[: len(self.attempts) - self.keep]


__all__ = ["BackendStats", "BoundedRecorder", "ProxyStats", "Samples", "percentile"]
