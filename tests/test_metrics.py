"""Prometheus metrics: scraped from a running proxy and a running `aichaos run`, and checked
against the records of the same traffic."""

from __future__ import annotations

import contextlib
import functools
import socket
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aichaos.cli import main
from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.observer import Observer, Observers
from aichaos.experiment.telemetry import MetricsObserver
from aichaos.proxy import RunningProxy, serve_proxy_in_thread
from aichaos.telemetry.metrics import Metrics, fault_kind
from proxy_helpers import make_session, settled, wait_for

TESTS = Path(__file__).parent
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def values(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """Samples of one series name by the given label values (zeros left out)."""
    out: dict[tuple[str, ...], float] = {}
    for (sample, labels), value in samples.items():
        if sample == name and value:
            by = dict(labels)
            out[tuple(by[k] for k in keys)] = value
    return out


@pytest.fixture
def proxy() -> Iterator[RunningProxy]:
    faults = [
        {"kind": "rate_limit", "backend": "openai", "probability": 0.5},
        {"kind": "latency", "backend": "claude", "delay": "10ms"},
    ]
    session = make_session({"openai": "openai", "claude": "anthropic"}, faults, seed=3)
    with serve_proxy_in_thread(session) as running:
        running.session.engine.start()
        yield running


def test_proxy_metrics_count_what_the_records_hold(proxy: RunningProxy) -> None:
    gpt = openai.OpenAI(base_url=proxy.backend_url("openai") + "/v1", api_key="k", max_retries=0)
    for _ in range(8):
        with contextlib.suppress(openai.RateLimitError):
            gpt.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    claude = httpx.post(
        proxy.backend_url("claude") + "/v1/messages",
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 20,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert claude.status_code == 200
    reply = httpx.get(proxy.admin_url + "/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    samples = parse(reply.text)
    attempts = settled(proxy.session)
    assert len(attempts) == 9
    expected = Counter((a.backend, str(a.status), a.outcome or "unknown") for a in attempts)
    got = values(samples, "aichaos_upstream_attempts_total", "backend", "code", "outcome")
    assert got == {k: float(v) for k, v in expected.items()}
    assert {k[1] for k in got} == {"200", "429"}  # both answers happened (seeded)
    kinds = Counter((a.backend, fault_kind(f)) for a in attempts for f in a.faults)
    assert values(samples, "aichaos_faults_injected_total", "backend", "kind") == {
        k: float(v) for k, v in kinds.items()
    }
    for backend in ("openai", "claude"):
        mine = [a for a in attempts if a.backend == backend]
        count = values(samples, "aichaos_upstream_attempt_duration_seconds_count", "backend")
        assert count[(backend,)] == len(mine)
        total = values(samples, "aichaos_upstream_attempt_duration_seconds_sum", "backend")
        assert total[(backend,)] == pytest.approx(sum(a.duration or 0 for a in mine))
    ttft = values(samples, "aichaos_upstream_time_to_first_token_seconds_count", "backend")
    assert ttft[("claude",)] == 1  # the stream's first token
    assert values(samples, "aichaos_upstream_attempts_in_flight", "backend") == {}
    assert ("aichaos_upstream_attempts_in_flight", frozenset({("backend", "openai")})) in samples
    # a proxy sees requests, not a run's calls: none of the run's series (docs/observability)
    run_only = ("aichaos_calls", "aichaos_call_duration_seconds", "aichaos_phase")
    assert not [name for name, _ in samples if name.startswith(run_only)]


def test_proxy_metrics_follow_the_admin_rules() -> None:
    session = make_session({"openai": "openai"})
    with serve_proxy_in_thread(session, admin_token="s3cret") as running:
        url = running.admin_url + "/metrics"
        assert httpx.get(url).status_code == 401
        ok = httpx.get(url, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "aichaos_upstream_attempts" in ok.text
    with serve_proxy_in_thread(make_session({"openai": "openai"}), admin=False) as running:
        assert httpx.get(running.admin_url + "/metrics").status_code == 404


def test_in_flight_is_read_at_scrape_time() -> None:
    live = {"openai": 2}
    metrics = Metrics(in_flight=lambda: live)
    samples = parse(metrics.exposition()[0].decode())
    assert values(samples, "aichaos_upstream_attempts_in_flight", "backend") == {("openai",): 2}
    live["openai"] = 0
    samples = parse(metrics.exposition()[0].decode())
    assert values(samples, "aichaos_upstream_attempts_in_flight", "backend") == {}


_EXPERIMENT = """
version: 1
backends: {openai: {provider: openai}}
target: {python: "experiment_targets:ask"}
load: {requests: 6, concurrency: 1}
phases: {baseline: {requests: 3}, recovery: {requests: 2}}
faults: [{backend: openai, kind: outage, probability: 0.5}]
hypothesis: [{check: success_rate, min: 0}]
"""


def test_run_metrics_agree_with_the_run_result() -> None:
    metrics = Metrics()
    experiment = parse_experiment(textwrap.dedent(_EXPERIMENT), base_dir=TESTS)
    job = functools.partial(run_experiment, experiment, 5, MetricsObserver(metrics))
    result = anyio.run(job)
    samples = parse(metrics.exposition()[0].decode())
    calls = Counter((c.phase, "ok" if c.ok else "failed") for c in result.calls)
    assert values(samples, "aichaos_calls_total", "phase", "result") == {
        k: float(v) for k, v in calls.items()
    }
    assert ("inject", "failed") in calls  # the seeded outage hit some calls
    attempts = Counter((a.backend, str(a.status)) for a in result.attempts)
    got = Counter[tuple[str, str]]()
    for (backend, code, _), v in values(
        samples, "aichaos_upstream_attempts_total", "backend", "code", "outcome"
    ).items():
        got[(backend, code)] += int(v)
    assert got == attempts
    assert values(samples, "aichaos_faults_injected_total", "backend", "kind") == {
        ("openai", "outage"): calls[("inject", "failed")]
    }
    # every phase was current once; none is after the run
    phases = {dict(labels)["phase"] for (name, labels) in samples if name == "aichaos_phase"}
    assert phases == {"baseline", "inject", "recovery"}
    assert values(samples, "aichaos_phase", "phase") == {}
    assert values(samples, "aichaos_calls_in_flight") == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_serves_metrics_during_the_run(tmp_path: Path) -> None:
    spec = tmp_path / "slow.yaml"
    spec.write_text(
        textwrap.dedent("""
        version: 1
        backends: {openai: {provider: openai}}
        target: {python: "experiment_targets:ask"}
        load: {requests: 40, rate: 40/s}
        phases: {baseline: {requests: 2}, recovery: {requests: 2}}
        faults: [{backend: openai, kind: outage}]
        hypothesis: [{check: success_rate, min: 0}]
        """)
    )
    port = _free_port()
    seen: list[Samples] = []
    done = threading.Event()

    def scrape() -> None:  # the run owns the main thread (signals): scrape beside it
        while not done.is_set():
            try:
                samples = parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            except httpx.TransportError:
                continue
            if values(samples, "aichaos_phase", "phase") == {("inject",): 1.0}:
                seen.append(samples)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        args = ["run", str(spec), "--quiet", "--seed", "1", "--metrics-port", str(port)]
        assert main(args) == 0
    finally:
        done.set()
        scraper.join()
    assert seen, "the inject phase was never seen in the metrics"
    with pytest.raises(httpx.TransportError):  # the server stops with the run
        httpx.get(f"http://127.0.0.1:{port}/metrics")


def test_observers_fan_out() -> None:
    one, two = Metrics(), Metrics()
    fan = Observers(MetricsObserver(one), MetricsObserver(two))
    fan.call_started(None)  # type: ignore[arg-type]
    for m in (one, two):
        assert values(parse(m.exposition()[0].decode()), "aichaos_calls_in_flight") == {(): 1.0}


def test_observers_pass_on_every_observer_method_in_order() -> None:
    heard: list[tuple[str, str, tuple[object, ...]]] = []

    class Recording(Observer):
        def __init__(self, label: str) -> None:
            self.label = label

        def __getattribute__(self, name: str) -> Any:
            if name.startswith("_") or name == "label":
                return object.__getattribute__(self, name)
            return lambda *args: heard.append((self.label, name, args))

    methods = [name for name in vars(Observer) if not name.startswith("_")]
    fan = Observers(Recording("a"), Recording("b"))
    for name in methods:
        getattr(fan, name)(name, 1)
    expected = [(label, name, (name, 1)) for name in methods for label in ("a", "b")]
    assert heard == expected
    assert len(methods) >= 10  # run_started ... close


def test_track_counts_attempts_in_flight() -> None:
    session = make_session({"openai": "openai"}, [{"kind": "latency", "delay": "400ms"}])
    metrics = Metrics()
    metrics.track(session)
    with serve_proxy_in_thread(session) as running:
        running.session.engine.start()
        gpt_url = running.backend_url("openai") + "/v1/chat/completions"
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
        answer: list[int] = []
        caller = threading.Thread(
            target=lambda: answer.append(httpx.post(gpt_url, json=body).status_code)
        )
        caller.start()
        seen: dict[tuple[str, ...], float] = {}
        while not answer and not seen:
            samples = parse(metrics.exposition()[0].decode())
            seen = values(samples, "aichaos_upstream_attempts_in_flight", "backend")
        caller.join()
        assert seen == {("openai",): 1.0}
        assert answer == [200]
        in_flight = "aichaos_upstream_attempts_in_flight"
        wait_for(lambda: not values(parse(metrics.exposition()[0].decode()), in_flight, "backend"))
        done = parse(metrics.exposition()[0].decode())
        assert values(done, "aichaos_upstream_attempts_total", "backend", "code", "outcome")
        metrics.untrack(session)
        assert metrics.attempt_began not in session.request_hooks
