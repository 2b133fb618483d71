"""Experiments with `network` faults, run by the runner against a REAL Toxiproxy.

The target calls the upstream (tests/toxiproxy_helpers.py) with the real openai SDK through
a Toxiproxy proxy the run creates. Whatever ends the run (its normal end, a `stop_when`,
Ctrl-C, a crash of the target), nothing aichaos created is left in Toxiproxy, and a proxy it
found is left exactly as it was. Marked `toxiproxy` (see test_toxiproxy_integration.py).
"""

from __future__ import annotations

import functools
import os
import signal
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.run_result import RunResult
from aichaos.faults.kinds.network import normalize_toxiproxy_url
from toxiproxy_helpers import BASE_URL_ENV, Answer, foreign_proxy, ours, proxies, upstream_server
from toxiproxy_server import free_port

pytestmark = pytest.mark.toxiproxy
TESTS = Path(__file__).parent

EXPERIMENT = """
version: 1
backends: {{openai: openai}}
target: {target}
load: {load}
phases: {phases}
faults:
  - backend: openai
    kind: network
    toxiproxy: {api}
    proxy: {{name: {proxy}, listen: "127.0.0.1:{port}", upstream: "{upstream}"}}
    {toxic}
{extra}
"""
THROUGH_TOXIPROXY = '{python: "toxiproxy_helpers:ask_through_toxiproxy"}'


@pytest.fixture
def api(toxiproxy_url: str) -> str:
    return normalize_toxiproxy_url(toxiproxy_url)


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[Answer]]]:
    with upstream_server() as served:
        yield served


@pytest.fixture
def through(monkeypatch: pytest.MonkeyPatch) -> int:
    """The port the run's proxy listens on; the target connects there."""
    port = free_port()
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{port}")
    return port


def experiment_text(
    api: str, upstream: str, port: int, toxic: str, **parts: str
) -> tuple[str, str]:
    """(the experiment's YAML, its proxy's name)."""
    proxy = f"aichaos_run_{uuid.uuid4().hex[:8]}"
    fields = {
        "target": THROUGH_TOXIPROXY,
        "load": "{requests: 3, concurrency: 1, timeout: 30s}",
        "phases": "{baseline: {requests: 2}, recovery: {requests: 2}}",
        "extra": "",
        **parts,
    }
    text = EXPERIMENT.format(
        api=api, proxy=proxy, port=port, upstream=upstream, toxic=toxic, **fields
    )
    return text, proxy


def run(text: str, **kw: Any) -> RunResult:
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    return anyio.run(functools.partial(run_experiment, experiment, 1, **kw))


def when(condition: Callable[[], bool], action: Callable[[], object]) -> threading.Thread:
    """Do `action()` once `condition()` holds (polled, in a thread; given up after 60 s)."""

    def poll() -> None:
        deadline = time.monotonic() + 60
        while not condition():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        action()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return thread


def toxic_on(api: str, proxy: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return bool(proxies(api).get(proxy, {}).get("toxics"))
        except httpx.HTTPError:
            return False

    return check


def network_events(result: RunResult) -> list[str]:
    return [e["message"] for e in result.events if e["message"].startswith("network:")]


def test_a_normal_end(api: str, upstream: tuple[str, list[Answer]], through: int) -> None:
    text, proxy = experiment_text(api, upstream[0], through, "toxic: latency\n    latency: 200ms")
    result = run(text)
    assert result.status == "passed", result.checks
    assert [p.name for p in result.phases] == ["baseline", "inject", "recovery"]
    assert all(c.ok and c.output == "xxxx" for c in result.calls)
    for call in (c for c in result.calls if c.phase == "inject"):
        assert call.duration is not None and call.duration >= 0.2 - 0.005  # through the toxic
    events = network_events(result)
    assert any(e.startswith(f"network: toxic added {proxy} aichaos_f0_latency") for e in events)
    assert any(e.startswith(f"network: toxic removed {proxy}") for e in events)
    assert ours(api) == []


def test_stop_when(api: str, upstream: tuple[str, list[Answer]], through: int) -> None:
    text, _proxy = experiment_text(
        api,
        upstream[0],
        through,
        "toxic: reset_peer",
        load="{duration: 60s, concurrency: 1, timeout: 30s}",
        extra="stop_when: [{check: success_rate, min: 0.5, window: 60s, min_calls: 3}]",
    )
    result = run(text)
    assert result.status == "aborted" and (result.reason or "").startswith("stop_when")
    assert [p.name for p in result.phases] == ["baseline", "inject"]
    inject = [c for c in result.calls if c.phase == "inject"]
    assert inject and not any(c.ok for c in inject)  # every connection was reset
    assert all(c.ok for c in result.calls if c.phase == "baseline")
    assert ours(api) == []


def test_ctrl_c(api: str, upstream: tuple[str, list[Answer]], through: int) -> None:
    text, proxy = experiment_text(
        api,
        upstream[0],
        through,
        "toxic: latency\n    latency: 50ms",
        load="{duration: 60s, concurrency: 1, timeout: 30s}",
    )
    when(toxic_on(api, proxy), lambda: os.kill(os.getpid(), signal.SIGINT))
    result = run(text, handle_signals=True)
    assert result.status == "interrupted" and "SIGINT" in (result.reason or "")
    assert [p.name for p in result.phases] == ["baseline", "inject"]
    assert ours(api) == []


def test_a_crash_of_the_target(
    api: str, upstream: tuple[str, list[Answer]], through: int, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            from http.server import BaseHTTPRequestHandler, HTTPServer
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            class H(BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers["content-length"]))
                    self.send_response(200)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                def log_message(self, *args): pass
            server = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
            print("listening", flush=True)  # once it is: the run starts on this line
            server.serve_forever()
            """
        )
    )
    target = (
        f'{{command: {{run: "{{{{python}}}} {app} {{{{port}}}}", ready: {{line: listening}},'
        ' http: {url: "http://127.0.0.1:{{port}}/chat", body: "{{prompt}}"}}}'
    )
    text, proxy = experiment_text(
        api,
        upstream[0],
        through,
        "toxic: limit_data\n    bytes: 100",
        target=target,
        load="{duration: 60s, concurrency: 1, timeout: 30s}",
        extra="stop_when: [{check: success_rate, min: 0.5, window: 60s, min_calls: 3}]",
    )
    killed: list[int] = []

    def crash() -> None:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    when(toxic_on(api, proxy), crash)
    result = run(text)
    assert killed, "the target was running while the toxic was on"
    assert result.status == "aborted"
    # Stopped by the crash: seen as the command's exit, or by stop_when when calls failing
    # against the dead app get there first (which wins is a race of the two watchers).
    reason = result.reason or ""
    by_exit = "the command exited with code -9 during the run" in reason
    by_stop_when = reason.startswith("stop_when success_rate") and any(
        not c.ok for c in result.calls if c.phase == "inject"
    )
    assert by_exit or by_stop_when, reason
    assert ours(api) == []


def test_a_proxy_it_did_not_create_is_left_alone(
    api: str, upstream: tuple[str, list[Answer]], through: int
) -> None:
    text, proxy = experiment_text(api, upstream[0], through, "toxic: latency\n    latency: 50ms")
    theirs = {"name": "theirs", "type": "latency", "attributes": {"latency": 1}}
    with foreign_proxy(api, proxy, upstream[0], f"127.0.0.1:{through}", theirs) as before:
        result = run(text)
        assert result.status == "passed", result.checks
        assert any("toxic added" in e for e in network_events(result))
        assert proxies(api)[proxy] == before
        assert not any(e.startswith("network: proxy") for e in network_events(result))


def test_stages_each_carry_their_own_toxics(
    api: str, upstream: tuple[str, list[Answer]], through: int
) -> None:
    proxy = f"aichaos_run_{uuid.uuid4().hex[:8]}"
    where = f'{{name: {proxy}, listen: "127.0.0.1:{through}", upstream: "{upstream[0]}"}}'
    text = f"""
        version: 1
        backends: {{openai: openai}}
        target: {THROUGH_TOXIPROXY}
        load: {{requests: 2, concurrency: 1, timeout: 30s}}
        phases: {{baseline: {{requests: 1}}, recovery: {{requests: 1}}}}
        stages:
          - name: slow
            faults:
              - {{kind: network, toxiproxy: {api}, proxy: {where}, toxic: latency,
                  latency: 200ms}}
          - name: calm
          - name: reset
            faults:
              - {{kind: network, toxiproxy: {api}, proxy: {where}, toxic: reset_peer}}
        hypothesis:
          - {{check: success_rate, min: 1.0, stage: calm}}
        """
    result = run(text)
    assert [p.name for p in result.phases] == ["baseline", "slow", "calm", "reset", "recovery"]
    calls = {p.name: [c for c in result.calls if c.phase == p.name] for p in result.phases}
    assert all(c.ok and (c.duration or 0) >= 0.2 - 0.005 for c in calls["slow"])
    assert all(c.ok for c in calls["baseline"] + calls["calm"] + calls["recovery"])
    assert calls["reset"] and not any(c.ok for c in calls["reset"])
    assert result.status == "passed", result.checks
    added = [e for e in network_events(result) if e.startswith("network: toxic added")]
    assert len(added) == 2
    assert (
        f"{proxy} aichaos_f0_latency" in added[0] and f"{proxy} aichaos_f1_reset_peer" in added[1]
    )
    assert ours(api) == []
