"""The runner: phases, faults only in inject, load schedules, targets, stop_when, interruption."""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aichaos.experiment import ExperimentError, Observer, parse_experiment, run_experiment
from aichaos.experiment.results import CallRecord, PhaseResult
from aichaos.experiment.run_result import RunResult
from aichaos.experiment.targets.command import backend_env, env_name
from servers import read_body, serve

TESTS = Path(__file__).parent


def run_yaml(text: str, seed: int = 1, observer: Observer | None = None, **kw: Any) -> RunResult:
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    job = functools.partial(run_experiment, experiment, seed, observer, **kw)
    return anyio.run(job)


def phase(result: RunResult, name: str) -> PhaseResult:
    return next(p for p in result.phases if p.name == name)


def calls_of(result: RunResult, name: str) -> list[CallRecord]:
    return [c for c in result.calls if c.phase == name]


class Recording(Observer):
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.calls = 0

    def phase_started(self, plan: Any) -> None:
        self.seen.append(f"start {plan.name}")

    def call_finished(self, call: CallRecord) -> None:
        self.calls += 1

    def phase_finished(self, phase: PhaseResult) -> None:
        self.seen.append(f"end {phase.name}")

    def run_finished(self, result: RunResult) -> None:
        self.seen.append(f"finished {result.status}")


def test_faults_act_only_in_the_inject_phase() -> None:
    observer = Recording()
    result = run_yaml(
        """
        version: 1
        backends: {openai: {provider: openai}}
        target: {python: "experiment_targets:ask"}
        load: {requests: 5, concurrency: 1}
        phases: {baseline: {requests: 3}, recovery: {requests: 3}}
        faults: [{backend: openai, kind: outage}]
        hypothesis:
          - {check: success_rate, min: 1, phase: baseline}
          - {check: success_rate, min: 1, phase: inject}
        """,
        observer=observer,
    )
    assert [p.name for p in result.phases] == ["baseline", "inject", "recovery"]
    for call in calls_of(result, "baseline") + calls_of(result, "recovery"):
        assert call.ok and call.served_by == "openai"
        assert [a.faults for a in call.attempts] == [[]]
    for call in calls_of(result, "inject"):
        assert not call.ok and call.error == "openai.InternalServerError" and call.status == 500
        assert [a.faults for a in call.attempts] == [["outage"]]
        assert call.attempts[0].call_id == call.id
    assert [c.passed for c in result.checks] == [True, False]
    assert result.status == "failed" and result.exit_code == 1
    inject = phase(result, "inject")
    assert result.fault_end == pytest.approx(inject.ended, abs=0.01)
    assert inject.metrics["faults"] == {"outage": 5}
    assert result.faults[0]["injected"] == 5
    assert (result.faults[0]["state"], result.faults[0]["state_at_removal"]) == (
        "removed",
        "active",
    )
    assert observer.calls == 11
    assert observer.seen == [
        "start baseline",
        "end baseline",
        "start inject",
        "end inject",
        "start recovery",
        "end recovery",
        "finished failed",
    ]


def test_windows_count_from_the_start_of_inject() -> None:
    result = run_yaml(
        """
        version: 1
        backends: {openai: openai}
        target: {python: "experiment_targets:ask"}
        load: {duration: 600ms, rate: 50/s}
        phases: {baseline: {requests: 10}, recovery: false}
        faults:
          - {backend: openai, kind: outage, window: {start: 200ms, duration: 200ms}}
        """
    )
    inject = phase(result, "inject")
    assert all(c.ok for c in calls_of(result, "baseline"))
    assert any(not c.ok for c in calls_of(result, "inject"))  # the window opened
    # Only orderings, no timing bound: the engine's clock starts after `inject.started`
    # and before `fault_end - 0.4`, so a call over before 0.2 s, or begun after the window
    # closed, met no fault, however slow this machine is.
    assert result.fault_end is not None and result.fault_end >= inject.started + 0.4
    for call in calls_of(result, "inject"):
        assert call.ended is not None
        if call.ended < inject.started + 0.2 or call.started >= result.fault_end:
            assert call.ok, (call.started - inject.started, call.ended - inject.started)


def test_open_loop_keeps_its_schedule_when_the_app_slows_down() -> None:
    result = run_yaml(
        """
        version: 1
        target: {python: "experiment_targets:async_sleepy"}
        load: {requests: 25, rate: 50/s, prompts: ["0.2"]}
        phases: {baseline: false, recovery: false}
        """
    )
    inject = phase(result, "inject")
    scheduled = sorted(c.scheduled for c in result.calls if c.scheduled is not None)
    assert len(scheduled) == 25
    gaps = [b - a for a, b in itertools.pairwise(scheduled)]
    assert gaps == pytest.approx([1 / 50] * 24, abs=1e-6)  # the schedule, not the app, sets it
    assert all(c.scheduled is not None and c.started >= c.scheduled for c in result.calls)
    # Closed loop would have one call in flight (25 x 0.2 s); the schedule keeps ~10 going.
    assert inject.metrics["peak_in_flight"] >= 5


def test_closed_loop_holds_its_concurrency() -> None:
    result = run_yaml(
        """
        version: 1
        target: {python: "experiment_targets:async_sleepy"}
        load: {requests: 20, concurrency: 5, prompts: ["0.05"]}
        phases: {baseline: false, recovery: false}
        """
    )
    inject = phase(result, "inject")
    assert inject.metrics["peak_in_flight"] == 5
    assert inject.ended - inject.started >= 4 * 0.05  # 20 calls of 0.05 s, 5 at a time
    assert len(result.calls) == 20 and all(c.ok for c in result.calls)


def test_duration_phase_and_prompts_in_turn() -> None:
    result = run_yaml(
        """
        version: 1
        target: {python: "experiment_targets:echo"}
        load: {duration: 200ms, concurrency: 2, prompts: [a, b, c]}
        phases: {baseline: false, recovery: false}
        """
    )
    inject = phase(result, "inject")
    assert inject.ended - inject.started >= 0.2
    assert len(result.calls) >= 3
    assert {c.output for c in result.calls} == {"a", "b", "c"}
    assert result.calls[0].output == "a" and result.calls[1].output == "b"


def test_per_call_timeout() -> None:
    result = run_yaml(
        """
        version: 1
        target: {python: "experiment_targets:sleepy"}
        load: {requests: 2, concurrency: 2, prompts: ["2"], timeout: 100ms}
        phases: {baseline: false, recovery: false}
        """
    )
    for call in result.calls:
        assert not call.ok and call.error == "timeout" and "100ms" in (call.message or "")
        assert call.duration is not None and call.duration >= 0.095


@pytest.mark.parametrize("target", ["ask_async", "ask"])
def test_sync_and_async_sdk_targets_are_attributed(target: str) -> None:
    result = run_yaml(
        f"""
        version: 1
        backends: {{openai: openai}}
        target: {{python: "experiment_targets:{target}"}}
        load: {{requests: 6, concurrency: 3}}
        phases: {{baseline: false, recovery: false}}
        faults: [{{backend: openai, kind: outage, every: 2}}]
        """
    )
    assert sum(1 for c in result.calls if c.ok) == 3
    for call in result.calls:
        assert len(call.attempts) == 1 and call.attempts[0].call_id == call.id
        assert call.ok == (call.attempts[0].faults == [])


@pytest.mark.parametrize("target", ["words", "async_words"])
def test_streaming_targets_give_ttft(target: str) -> None:
    result = run_yaml(
        f"""
        version: 1
        target: {{python: "experiment_targets:{target}"}}
        load: {{requests: 2, concurrency: 2}}
        phases: {{baseline: false, recovery: false}}
        hypothesis: [{{check: ttft, percentile: 99, max: 60s}}]
        """
    )
    for call in result.calls:
        assert call.output == "one two three"
        assert call.ttft is not None and call.duration is not None
        assert 0.045 <= call.ttft <= call.duration  # the target waits 0.05 s before its first word
    assert result.passed


def test_ttft_from_a_streamed_upstream_answer() -> None:
    result = run_yaml(
        """
        version: 1
        backends: {openai: openai}
        mock: {ttft: 100ms}
        target: {python: "experiment_targets:ask_streaming"}
        load: {requests: 2, concurrency: 1}
        phases: {baseline: false, recovery: false}
        """
    )
    for call in result.calls:
        assert call.ok and call.output
        assert call.ttft is not None and call.duration is not None
        assert 0.095 <= call.ttft <= call.duration


def test_records_are_passed_when_asked() -> None:
    result = run_yaml(
        """
        version: 1
        target: {python: {function: "experiment_targets:topic", receives: record}}
        load:
          requests: 2
          prompts: [{prompt: "Why?", topic: billing}, {prompt: "How?", topic: bugs}]
        phases: {baseline: false, recovery: false}
        """
    )
    assert [c.output for c in result.calls] == ["billing: Why?", "bugs: How?"]


def test_stop_when_aborts_and_removes_faults() -> None:
    result = run_yaml(
        """
        version: 1
        backends: {openai: openai}
        target: {python: "experiment_targets:ask"}
        load: {duration: 10s, concurrency: 2}
        phases: {baseline: {requests: 4}, recovery: {requests: 5}}
        faults: [{backend: openai, kind: outage, probability: 0.8}]
        hypothesis: [{check: success_rate, min: 0}]
        stop_when:
          - {check: success_rate, min: 0.5, window: 1s, min_calls: 5}
        """
    )
    assert result.status == "aborted" and result.exit_code == 3
    assert result.reason is not None and result.reason.startswith("stop_when success_rate")
    assert [p.name for p in result.phases] == ["baseline", "inject"]
    assert not phase(result, "inject").completed
    assert any(e["message"] == result.reason for e in result.events)
    assert result.faults and result.fault_end is not None


def interrupt_when(condition: Any, timeout: float = 30.0) -> threading.Thread:
    """SIGINT to this process once `condition()` holds (polled): the run is under way by then."""

    def wait_and_kill() -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=wait_and_kill, daemon=True)
    thread.start()
    return thread


def test_interrupt_ends_the_run_cleanly() -> None:
    observer = Recording()
    interrupt_when(lambda: observer.calls >= 2)
    result = run_yaml(
        """
            version: 1
            target: {python: "experiment_targets:async_sleepy"}
            load: {duration: 10s, concurrency: 2, prompts: ["0.02"]}
            phases: {baseline: false}
            hypothesis: [{check: success_rate, min: 1}]
            """,
        observer=observer,
        handle_signals=True,
    )
    assert result.status == "interrupted" and result.exit_code == 3
    assert "SIGINT" in (result.reason or "")
    assert [p.name for p in result.phases] == ["inject"]
    assert not result.phases[0].completed  # 10 s of load, cut short


def test_same_seed_same_faults() -> None:
    text = """
        version: 1
        backends: {openai: openai}
        target: {python: "experiment_targets:ask"}
        load: {requests: 16, concurrency: 1}
        phases: {baseline: false, recovery: false}
        faults: [{backend: openai, kind: outage, probability: 0.5}]
        """
    first = [c.ok for c in run_yaml(text, seed=5).calls]
    again = [c.ok for c in run_yaml(text, seed=5).calls]
    other = [c.ok for c in run_yaml(text, seed=6).calls]
    assert first == again
    assert first != other
    assert 3 <= first.count(False) <= 13


# --- http and command targets (through the chaos proxy) -----------------------------------


async def _chat_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that calls its model through `base` (the proxy URL it was given)."""
    if scope["type"] != "http":
        return
    request = json.loads(await read_body(receive))
    headers = {"authorization": "Bearer sk-test"}
    if request.get("forward"):
        headers["x-aichaos-call"] = dict(scope["headers"])[b"x-aichaos-call"].decode()
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{request['base']}/v1/chat/completions",
            headers=headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": request["q"]}]},
        )
    if reply.status_code == 200:
        status, payload = 200, {"answer": reply.json()["choices"][0]["message"]["content"]}
    else:
        status, payload = 502, {"error": "model failed"}
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": data})


@pytest.mark.parametrize(("forward", "concurrency"), [(True, 3), (False, 1)])
def test_http_target_through_the_proxy(forward: bool, concurrency: int) -> None:
    with serve(_chat_app) as url:
        result = run_yaml(
            f"""
            version: 1
            backends: {{openai: openai}}
            target:
              http:
                url: {url}/chat
                json:
                  {{q: "{{{{prompt}}}}", base: "{{{{backends.openai.url}}}}", forward: {forward}}}
                output: answer
            load: {{requests: 8, concurrency: {concurrency}}}
            phases: {{baseline: {{requests: 2}}, recovery: false}}
            faults: [{{backend: openai, kind: outage, every: 2}}]
            hypothesis:
              - {{check: status, allowed: [200, 502]}}
              - {{check: served_by, backend: openai, min_share: 0.5, phase: inject}}
              - {{check: attempts, max: 1}}
            """
        )
    inject = calls_of(result, "inject")
    assert sum(1 for c in inject if c.ok) == 4
    for call in inject:
        assert len(call.attempts) == 1, call
        assert call.status == (200 if call.ok else 502)
        assert call.error is None if call.ok else call.error == "http_502"
        assert call.attempts[0].faults == ([] if call.ok else ["outage"])
    assert all(c.output and "{" not in c.output for c in inject if c.ok)
    assert result.passed, [c for c in result.checks if not c.passed]


def test_command_that_fails_to_start_shows_its_output() -> None:
    with pytest.raises(ExperimentError) as info:
        run_yaml(
            """
            version: 1
            target:
              command:
                run: ["{{python}}", "-c", "print('boom: bad config'); raise SystemExit(3)"]
                ready: http://127.0.0.1:{{port}}/health
                http: {url: "http://127.0.0.1:{{port}}/chat"}
            load: {requests: 1}
            """
        )
    message = info.value.format()
    assert "exited with code 3" in message and "boom: bad config" in message


def test_command_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid()));"
        " print('warming up', flush=True); time.sleep(60)"
    )
    with pytest.raises(ExperimentError) as info:
        run_yaml(
            f"""
            version: 1
            target:
              command:
                run: ["{{{{python}}}}", "-c", "{code}"]
                ready: {{line: "never printed", timeout: 500ms}}
                http: {{url: "http://127.0.0.1:{{{{port}}}}/chat"}}
            load: {{requests: 1}}
            """
        )
    assert "not ready after 0.5s" in info.value.format()
    assert "warming up" in info.value.format()
    _assert_gone(int(pid_file.read_text()))


def test_command_is_stopped_after_the_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    server = tmp_path / "server.py"
    server.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            from http.server import BaseHTTPRequestHandler, HTTPServer
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            class H(BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers["content-length"]))
                    body = os.environ["AICHAOS_BACKEND_OPENAI_URL"].encode()
                    self.send_response(200)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args): pass
            server = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
            print("listening", flush=True)  # once it is: the run starts on this line
            server.serve_forever()
            """
        )
    )
    result = run_yaml(
        f"""
        version: 1
        backends: {{openai: openai}}
        target:
          command:
            run: "{{{{python}}}} {server} {{{{port}}}}"
            ready: {{line: listening}}
            http: {{url: "http://127.0.0.1:{{{{port}}}}/chat", body: "{{{{prompt}}}}"}}
        load: {{requests: 3}}
        phases: {{baseline: false, recovery: false}}
        hypothesis: [{{check: response, regex: "^http://127.0.0.1:[0-9]+/openai$"}}]
        """
    )
    assert result.passed, result.checks
    _assert_gone(int(pid_file.read_text()))


def _assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still running")


def test_backend_environment_for_commands() -> None:
    experiment = parse_experiment(
        textwrap.dedent(
            """
            version: 1
            backends:
              primary: {provider: openai}
              openai: {provider: openai, host: second.example}
              claude-fast: {provider: anthropic}
            target: {command: {run: app, http: {url: "http://127.0.0.1:1/"}}}
            load: {requests: 1}
            """
        ),
        base_dir=TESTS,
    )
    urls = {name: f"http://proxy/{name}" for name in experiment.backends}
    env = backend_env(experiment, urls)
    assert env["OPENAI_BASE_URL"] == "http://proxy/openai/v1"  # the one named like the provider
    assert env["ANTHROPIC_BASE_URL"] == "http://proxy/claude-fast"
    assert env[env_name("claude-fast")] == "http://proxy/claude-fast"
    assert env_name("claude-fast") == "AICHAOS_BACKEND_CLAUDE_FAST_URL"
    assert env["AICHAOS_BACKEND_PRIMARY_URL"] == "http://proxy/primary"
    assert sys.executable  # `{{python}}` is this interpreter


# --- network faults (a real Toxiproxy) --------------------------------

NETWORK = """
version: 1
backends: {{openai: openai}}
target: {{python: "experiment_targets:noop"}}
load: {{duration: 600ms, concurrency: 1}}
phases: {{baseline: {{requests: 3}}, recovery: {{requests: 3}}}}
faults:
  - backend: openai
    kind: network
    toxic: latency
    latency: 500ms
    toxiproxy: {url}
    window: {{start: 100ms, duration: 200ms}}
    proxy: {{name: openai, listen: "127.0.0.1:0", upstream: "127.0.0.1:9"}}
"""


@pytest.mark.toxiproxy
def test_network_toxics_follow_their_window_in_inject(toxiproxy_url: str) -> None:
    result = run_yaml(NETWORK.format(url=toxiproxy_url))
    messages = [e["message"] for e in result.events if e["message"].startswith("network:")]
    assert messages[0].startswith("network: proxy created openai")  # it carries every phase
    assert "openai" not in httpx.get(f"{toxiproxy_url}/proxies", timeout=10).json()  # deleted
    inject = phase(result, "inject")
    added = next(e for e in result.events if e["message"].startswith("network: toxic added"))
    removed = next(e for e in result.events if e["message"].startswith("network: toxic removed"))
    # Event times count from the inject phase's start at the latest: lower bounds only.
    assert added["at"] - inject.started >= 0.1
    assert removed["at"] - inject.started >= 0.3
    assert result.status == "passed"


def test_unreachable_toxiproxy_stops_before_anything_runs() -> None:
    with pytest.raises(ExperimentError) as info:
        run_yaml(NETWORK.format(url="http://127.0.0.1:9"))
    assert "network faults:" in info.value.format()


def test_interrupt_while_a_command_starts(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    interrupt_when(pid_file.exists)  # the command is starting
    result = run_yaml(
        f"""
            version: 1
            target:
              command:
                run: ["{{{{python}}}}", "-c", "{code}"]
                ready: {{line: "never printed", timeout: 30s}}
                http: {{url: "http://127.0.0.1:{{{{port}}}}/chat"}}
            load: {{requests: 1}}
            """,
        handle_signals=True,
    )
    assert result.status == "interrupted" and result.phases == [] and result.calls == []
    _assert_gone(int(pid_file.read_text()))
