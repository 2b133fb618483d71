"""OpenTelemetry spans for upstream attempts and runs (the `otel` extra).

A span per upstream attempt (kind CLIENT), started when the request begins (a `Session`
request hook) and ended when its record is finished (a `Recorder` listener): the fault, the
outcome and the backend are attributes. A request that carries a W3C `traceparent` (an app
instrumented with OpenTelemetry forwards it) gets its span in the app's own trace, as a child
of the app's span. A run gets a span with a child per phase; the inject phase's span carries
an event for each fault window opening and closing.

Nothing is exported unless configured: `tracer_provider_from_env()` builds an SDK provider
with the OTLP exporter only when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (or `OTEL_TRACES_EXPORTER=otlp|console`) is set, and not
when `OTEL_SDK_DISABLED=true`. Attribute names: `aichaos.*` for aichaos' own, the
OpenTelemetry semantic conventions for HTTP (`http.request.method`,
`http.response.status_code`, `url.path`, `error.type`) and GenAI (`gen_ai.request.model`,
`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from aichaos.records import Attempt, Recorder
from aichaos.telemetry import otel_configured
from aichaos.telemetry.metrics import fault_kind

if TYPE_CHECKING:
    from aichaos.intercept.session import Session
    from aichaos.wire.exchange import RequestInfo

_PROPAGATOR = TraceContextTextMapPropagator()
SCOPE = "aichaos"


# One reading of both clocks: every conversion uses the same offset, so times taken in
# order stay in order (two readings per conversion could be preempted apart).
_EPOCH_NS = time.time_ns() - time.perf_counter_ns()


def _ns(perf: float) -> int:
    """A `time.perf_counter()` reading as wall-clock nanoseconds."""
    return _EPOCH_NS + int(perf * 1e9)


class Tracing:
    """Spans for the attempts of one or more sessions, from `tracer`."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._open: dict[int, Span] = {}  # by id(attempt), until its record is finished
        self._lock = threading.Lock()

    def attach(self, session: Session) -> None:
        """Trace every attempt `session` begins from now on."""
        session.request_hooks.append(self.request_began)
        session.recorder.listeners.append(self.attempt_finished)

    def detach(self, session: Session) -> None:
        if self.request_began in session.request_hooks:
            session.request_hooks.remove(self.request_began)
        self.detach_recorder(session.recorder)

    def detach_recorder(self, recorder: Recorder) -> None:
        if self.attempt_finished in recorder.listeners:
            recorder.listeners.remove(self.attempt_finished)

    def request_began(self, info: RequestInfo, attempt: Attempt) -> None:
        """Open the attempt's span, in the app's trace when the request carries one."""
        carrier = {"traceparent": info.headers.get("traceparent", "")}
        if "tracestate" in info.headers:
            carrier["tracestate"] = info.headers["tracestate"]
        parent = _PROPAGATOR.extract(carrier) if carrier["traceparent"] else None
        attributes: dict[str, Any] = {
            "aichaos.backend": attempt.backend,
            "aichaos.provider": attempt.provider,
            "aichaos.upstream": attempt.upstream,
            "http.request.method": attempt.method,
            "url.path": attempt.path,
            "aichaos.stream": attempt.stream,
        }
        if attempt.model:
            attributes["gen_ai.request.model"] = attempt.model
        if attempt.call_id:
            attributes["aichaos.call"] = attempt.call_id
        span = self.tracer.start_span(
            f"{attempt.method} {attempt.backend}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(attempt.started) if attempt.started else None,
        )
        with self._lock:
            self._open[id(attempt)] = span

    def attempt_finished(self, attempt: Attempt) -> None:
        """Close the attempt's span with what happened (its fault, outcome and status)."""
        with self._lock:
            span = self._open.pop(id(attempt), None)
        if span is None:
            return
        if attempt.faults:
            span.set_attribute("aichaos.faults", list(attempt.faults))
            span.set_attribute(
                "aichaos.fault.kinds", sorted({fault_kind(f) for f in attempt.faults})
            )
        span.set_attribute("aichaos.outcome", attempt.outcome or "unknown")
        if attempt.status is not None:
            span.set_attribute("http.response.status_code", attempt.status)
        if attempt.input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", attempt.input_tokens)
        if attempt.output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", attempt.output_tokens)
        if attempt.ttft is not None:
            span.add_event("first_token", timestamp=_ns(attempt.started + attempt.ttft))
        if not attempt.ok:
            error = attempt.error or (str(attempt.status) if attempt.status else "error")
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        end = attempt.started + attempt.duration if attempt.duration is not None else None
        span.end(end_time=_ns(end) if end is not None else None)


class RunSpans:
    """A span for a run and one per phase; fault windows as events of the inject phase."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.run: Span | None = None
        self.phase: Span | None = None

    def run_started(self, title: str, seed: int) -> None:
        self.run = self.tracer.start_span(
            f"aichaos run {title}", attributes={"aichaos.experiment": title, "aichaos.seed": seed}
        )

    def phase_started(self, name: str, at: float) -> None:
        """`at`: the phase's start, in `perf_counter` seconds (as its fault windows)."""
        if self.run is None:
            return
        context = trace.set_span_in_context(self.run)
        self.phase = self.tracer.start_span(
            f"phase {name}",
            context=context,
            attributes={"aichaos.phase": name},
            start_time=_ns(at),
        )

    def fault_windows(self, windows: Iterable[tuple[str, str, str, float, float]]) -> None:
        """Events for fault windows: (fault label, kind, backend, opened, closed), times in
        `perf_counter` seconds."""
        if self.phase is None:
            return
        for label, kind, backend, opened, closed in windows:
            attributes = {
                "aichaos.fault": label,
                "aichaos.fault.kind": kind,
                "aichaos.backend": backend,
            }
            self.phase.add_event("fault_window_opened", attributes, timestamp=_ns(opened))
            self.phase.add_event("fault_window_closed", attributes, timestamp=_ns(closed))

    def phase_finished(self, failed: bool, at: float) -> None:
        """`at`: the phase's end, in `perf_counter` seconds."""
        if self.phase is not None:
            if failed:
                self.phase.set_status(Status(StatusCode.ERROR))
            self.phase.end(end_time=_ns(at))
            self.phase = None

    def run_finished(self, status: str) -> None:
        if self.run is not None:
            self.run.set_attribute("aichaos.status", status)
            if status != "passed":
                self.run.set_status(Status(StatusCode.ERROR, status))
            self.run.end()
            self.run = None


def tracer_provider_from_env() -> Any:
    """An SDK `TracerProvider` exporting as the OTEL_* environment says (OTLP over HTTP, or
    the console), or None when it says nothing."""
    if not otel_configured():
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "aichaos"}
    provider = TracerProvider(resource=Resource.create(named))
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


__all__ = ["RunSpans", "Tracing", "tracer_provider_from_env"]
