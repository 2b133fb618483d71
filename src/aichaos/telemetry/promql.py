"""A small client of the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`).

Answers follow https://prometheus.io/docs/prometheus/latest/querying/api/: a JSON envelope
`{"status": "success"|"error", "data": {"resultType", "result"}, "errorType", "error"}`;
a rejected query is a 400 (bad_data) or 422 (execution) with that envelope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx


class PrometheusError(Exception):
    """The server could not be reached, or rejected the query: the message says which."""


@dataclass(frozen=True)
class Sample:
    """One series' value at one time (seconds since the epoch)."""

    labels: dict[str, str]
    at: float
    value: float


def public_url(url: str) -> str:
    """`url` without user:password, for messages and reports."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class PrometheusClient:
    """Queries one Prometheus server; `timeout` in seconds per request."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def instant(self, query: str, at: float | None = None) -> list[Sample]:
        """The query's value at `at` (now when None): one sample per series."""
        params: dict[str, Any] = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._samples(self._get("/api/v1/query", params))

    def range(self, query: str, start: float, end: float, step: float) -> list[Sample]:
        """The query evaluated every `step` seconds from `start` to `end`, oldest first."""
        params = {
            "query": query,
            "start": f"{start:.3f}",
            "end": f"{max(end, start):.3f}",
            "step": f"{max(step, 0.001):.3f}",
        }
        samples = self._samples(self._get("/api/v1/query_range", params))
        return sorted(samples, key=lambda s: s.at)

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        where = public_url(self.url)
        try:
            response = httpx.get(self.url + path, params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {where}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusError(
                f"{where} did not answer as a Prometheus server (HTTP {response.status_code})"
            )
        if body["status"] != "success":
            kind = body.get("errorType", "error")
            raise PrometheusError(f"Prometheus rejected the query ({kind}): {body.get('error')}")
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _samples(data: dict[str, Any]) -> list[Sample]:
        kind, result = data.get("resultType"), data.get("result") or []
        if kind == "scalar":
            return [Sample({}, float(result[0]), _number(result[1]))]
        samples = []
        for series in result:
            labels = {str(k): str(v) for k, v in (series.get("metric") or {}).items()}
            points = series.get("values") or ([series["value"]] if "value" in series else [])
            samples += [Sample(labels, float(t), _number(v)) for t, v in points]
        return samples


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


__all__ = ["PrometheusClient", "PrometheusError", "Sample", "public_url"]
