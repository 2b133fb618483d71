"""A command target's app: it dies with the runner, a stale app on its port is refused,
and an app that dies mid-run ends the run at once (exit 3) with its last output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.errors import ExperimentError

TESTS = Path(__file__).parent
APP = TESTS / "tiny_app.py"


def _experiment(run: str, port: str = "{{port}}", requests: int = 20) -> str:
    return (
        "version: 1\nbackends: {openai: openai}\ntarget:\n  command:\n"
        f"    run: '{{{{python}}}} {APP} {run}'\n"
        f"    ready: 'http://127.0.0.1:{port}/health'\n"
        f"    http: {{url: 'http://127.0.0.1:{port}/chat', json: {{q: '{{{{prompt}}}}'}},"
        " output: answer}\n"
        f"load: {{requests: {requests}, concurrency: 1}}\n"
        "phases: {baseline: false, recovery: false}\n"
        "hypothesis: [{check: success_rate, min: 1}]\n"
    )


def test_an_app_that_dies_mid_run_aborts_it_with_its_last_output() -> None:
    text = _experiment("{{port}} --die-after 3", requests=100_000)
    result = anyio.run(run_experiment, parse_experiment(text, base_dir=TESTS))
    assert result.status == "aborted" and result.exit_code == 3
    assert "exited with code 3 during the run" in (result.reason or "")
    assert "out of memory, giving up" in (result.reason or "")
    assert len(result.calls) < 100_000  # the phase did not go on against a dead app


def test_a_port_already_in_use_is_refused_before_starting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as stale:
        port = stale.getsockname()[1]
        text = _experiment(f"{port}", port=str(port))
        with pytest.raises(ExperimentError, match=f"port {port} is already in use"):
            anyio.run(run_experiment, parse_experiment(text, base_dir=TESTS))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_the_app_dies_with_the_runner_even_on_kill_9(tmp_path: Path) -> None:
    pid_file = tmp_path / "app.pid"
    path = tmp_path / "e.yaml"
    path.write_text(_experiment(f"{{{{port}}}} --pid-file {pid_file}", requests=100_000))
    runner = subprocess.Popen(
        [sys.executable, "-m", "aichaos", "run", "--quiet", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert runner.poll() is None and time.monotonic() < deadline, "the app never started"
            time.sleep(0.05)
        app = int(pid_file.read_text())
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(30)
    deadline = time.monotonic() + 30
    try:
        while _alive(app):
            assert time.monotonic() < deadline, "the app outlived its runner"
            time.sleep(0.05)
    finally:
        if _alive(app):  # leave nothing behind when the check fails
            os.kill(app, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_second_ctrl_c_during_cleanup_keeps_the_outputs(tmp_path: Path) -> None:
    pid_file, events = tmp_path / "app.pid", tmp_path / "app.events"
    path = tmp_path / "e.yaml"
    run = f"{{{{port}}}} --pid-file {pid_file} --ignore-term --events {events}"
    text = _experiment(run, requests=100_000)
    path.write_text(text.replace("    ready:", "    stop_timeout: 3s\n    ready:"))
    journal = tmp_path / "journal.json"
    runner = subprocess.Popen(
        [sys.executable, "-m", "aichaos", "run", "--quiet", str(path), "--journal", str(journal)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def wait_for(line: str) -> None:
        deadline = time.monotonic() + 60
        while not events.exists() or line not in events.read_text().split():
            assert runner.poll() is None and time.monotonic() < deadline, f"no {line!r}"
            time.sleep(0.05)

    wait_for("answered")  # the app started and calls are made
    runner.send_signal(signal.SIGINT)  # stop: the app ignores SIGTERM, cleanup waits 3 s
    wait_for("term")  # the cleanup is under way
    runner.send_signal(signal.SIGINT)  # impatient: a second Ctrl-C during that cleanup
    _, err = runner.communicate(timeout=600)
    assert runner.returncode == 3, err
    assert "Traceback" not in err
    assert journal.exists() and '"interrupted"' in journal.read_text()
    assert not _alive(int(pid_file.read_text()))


def test_open_loop_overload_sheds_arrivals_and_ends_on_time() -> None:
    text = (
        "version: 1\ntarget: {python: 'experiment_targets:sleepy'}\n"
        "load: {rate: 400/s, duration: 1s, timeout: 100ms, prompts: ['2']}\n"
        "phases: {baseline: false, recovery: false}\n"
        "hypothesis: [{check: success_rate, min: 1}]\n"
    )
    result = anyio.run(run_experiment, parse_experiment(text, base_dir=TESTS))
    errors = [call.error for call in result.calls]
    assert len(errors) >= 200  # every arrival is accounted for, made or shed
    # every call made ends by its timeout; how many are shed at the boundary (rate x timeout
    # in flight) depends on how late the timeouts fire, so that is proven below
    assert errors.count("timeout") > 0
    assert errors.count("shed") + errors.count("timeout") == len(errors)
    assert all(call.ended is not None for call in result.calls)


def test_arrivals_beyond_the_in_flight_cap_are_shed_and_counted() -> None:
    # 2,000 arrivals within half a second, each call held 3 s: far more than the 1,024 calls
    # the runner keeps in flight (held 1 s, a loaded machine that took over a second to start
    # them all freed slots before the last arrivals, and fewer were shed)
    text = (
        "version: 1\ntarget: {python: 'experiment_targets:async_sleepy'}\n"
        "load: {rate: 4000/s, duration: 500ms, timeout: 30s, prompts: ['3']}\n"
        "phases: {baseline: false, recovery: false}\n"
        "hypothesis: [{check: success_rate, min: 1}]\n"
    )
    result = anyio.run(run_experiment, parse_experiment(text, base_dir=TESTS))
    errors = [call.error for call in result.calls]
    shed = errors.count("shed")
    assert len(errors) == 2000 and shed >= 2000 - 1024
    assert all(call.ok for call in result.calls if call.error != "shed")
    assert all("already in flight" in (c.message or "") for c in result.calls if c.error == "shed")
