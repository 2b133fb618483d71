"""OpenTelemetry spans (the `otel` extra), captured with the SDK's in-memory exporter, and the
OTLP export of `aichaos run` to a real OTLP/HTTP receiver when OTEL_* asks for it."""

from __future__ import annotations

import functools
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aichaos.cli import main
from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.telemetry import TracingObserver
from aichaos.proxy import RunningProxy, serve_proxy_in_thread
from aichaos.telemetry import otel_configured
from aichaos.telemetry.tracing import Tracing, tracer_provider_from_env
from proxy_helpers import make_session, wait_for

TESTS = Path(__file__).parent
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def tracer(exporter: InMemorySpanExporter) -> object:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("aichaos-tests")


@pytest.fixture
def proxy(exporter: InMemorySpanExporter) -> Iterator[RunningProxy]:
    faults = [{"kind": "rate_limit", "backend": "openai", "match": {"model": "gpt-4o-mini"}}]
    session = make_session({"openai": "openai"}, faults)
    Tracing(tracer(exporter)).attach(session)  # type: ignore[arg-type]
    with serve_proxy_in_thread(session) as running:
        yield running


def test_attempt_span_joins_the_apps_trace(
    proxy: RunningProxy, exporter: InMemorySpanExporter
) -> None:
    url = proxy.backend_url("openai") + "/v1/chat/completions"
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}
    assert httpx.post(url, json=CHAT, headers=headers).status_code == 200
    wait_for(lambda: exporter.get_finished_spans())  # the record closes after the last byte
    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.CLIENT
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT
    attributes = dict(span.attributes or {})
    assert attributes["aichaos.backend"] == "openai"
    assert attributes["http.response.status_code"] == 200
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert "aichaos.outcome" in attributes and "aichaos.faults" not in attributes
    assert span.status.status_code == StatusCode.UNSET
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time >= span.start_time


def test_a_faulted_attempt_says_which_fault(
    proxy: RunningProxy, exporter: InMemorySpanExporter
) -> None:
    url = proxy.backend_url("openai") + "/v1/chat/completions"
    assert httpx.post(url, json={**CHAT, "model": "gpt-4o-mini"}).status_code == 429
    wait_for(lambda: exporter.get_finished_spans())
    (span,) = exporter.get_finished_spans()
    assert span.parent is None  # no traceparent: a trace of its own
    attributes = dict(span.attributes or {})
    assert attributes["aichaos.fault.kinds"] == ("rate_limit",)
    assert attributes["http.response.status_code"] == 429
    assert span.status.status_code == StatusCode.ERROR


_EXPERIMENT = """
version: 1
backends: {openai: {provider: openai}}
target: {python: "experiment_targets:ask"}
load: {requests: 4, concurrency: 1}
phases: {baseline: {requests: 2}, recovery: {requests: 1}}
faults: [{backend: openai, kind: outage, window: {start: 0ms, duration: 10s}}]
hypothesis: [{check: success_rate, min: 0}]
"""


def test_run_spans_phases_attempts_and_fault_windows(exporter: InMemorySpanExporter) -> None:
    experiment = parse_experiment(textwrap.dedent(_EXPERIMENT), base_dir=TESTS)
    observer = TracingObserver(tracer(exporter))
    result = anyio.run(functools.partial(run_experiment, experiment, 1, observer))
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[object]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (run,) = by_name[f"aichaos run {experiment.name}"]
    phases = [s for s in spans if s.name.startswith("phase ")]
    assert [s.name for s in phases] == ["phase baseline", "phase inject", "phase recovery"]
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in phases)
    attempts = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(attempts) == len(result.attempts) == 7
    faulted = [s for s in attempts if (s.attributes or {}).get("aichaos.faults")]
    assert len(faulted) == 4  # the inject calls met the outage
    inject = phases[1]
    events = [(e.name, dict(e.attributes or {})) for e in inject.events]
    assert [name for name, _ in events] == ["fault_window_opened", "fault_window_closed"]
    assert events[0][1]["aichaos.fault.kind"] == "outage"
    assert events[0][1]["aichaos.backend"] == "openai"
    opened, closed = (e.timestamp for e in inject.events)
    assert inject.start_time <= opened <= closed <= inject.end_time  # closed with the phase


def test_nothing_is_exported_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert not otel_configured() and tracer_provider_from_env() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert otel_configured()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not otel_configured()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not otel_configured()


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each export request and keeps its spans."""

    spans: list[str] = []

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += [span.name for span in scope.spans]
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_run_exports_over_otlp_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.spans = []
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        spec = tmp_path / "exp.yaml"
        spec.write_text(textwrap.dedent(_EXPERIMENT))
        assert main(["run", str(spec), "--quiet", "--seed", "1"]) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    names = _Receiver.spans
    assert "phase inject" in names and sum(n.startswith("POST ") for n in names) == 7
