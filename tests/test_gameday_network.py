"""The game day (experiments/gameday-network.yaml) against its stack, on this machine.

docker-compose.yml's stack, with each part started as a process on 127.0.0.1 instead of a
container: the aichaos mock, the aichaos proxy (loading the same file for its provider
faults), the game-day app, and the real Toxiproxy holding the stack's two proxies
(experiments/apps/gameday/toxiproxy.json, as its `-config` would). The experiment is the
file as written, with the stack's addresses replaced by these processes' and its times
shortened twentyfold (60 s of inject in 3 s, every window in proportion). The runner drives
Toxiproxy through its API, as `docker compose run --rm gameday` does. Marked `toxiproxy`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from aichaos.experiment import load_experiment, run_experiment
from aichaos.faults.kinds.network import normalize_toxiproxy_url
from toxiproxy_helpers import proxies
from toxiproxy_server import free_port

pytestmark = pytest.mark.toxiproxy
ROOT = Path(__file__).parent.parent
GAMEDAY = ROOT / "experiments" / "gameday-network.yaml"
TOXIPROXY_CONFIG = ROOT / "experiments" / "apps" / "gameday" / "toxiproxy.json"
SPEEDUP = 20


def shorter(text: str) -> str:
    """Every time of the load and of the windows, divided by SPEEDUP."""

    def scaled(match: re.Match[str]) -> str:
        return f"{match.group(1)}{int(match.group(2)) * 1000 // SPEEDUP}ms"

    return re.sub(r"((?:start|duration): )(\d+)s\b", scaled, text)


def on_this_machine(text: str, ports: dict[str, int]) -> str:
    """The stack's service addresses replaced by the processes' on 127.0.0.1."""
    for old, new in (
        ("http://mock:8900", f"http://127.0.0.1:{ports['mock']}"),
        ("http://app:8000/chat", f"http://127.0.0.1:{ports['app']}/chat"),
        ('"aichaos-proxy:8800"', f'"127.0.0.1:{ports["proxy"]}"'),
        ('"0.0.0.0:18080"', f'"127.0.0.1:{ports["openai"]}"'),
        ('"0.0.0.0:18081"', f'"127.0.0.1:{ports["claude"]}"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.args} is not listening on {port}") from None
            time.sleep(0.02)


@pytest.fixture
def stack(toxiproxy_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, int], Path]]:
    """(Toxiproxy's API, the ports, the experiment file) of a running stack."""
    api = normalize_toxiproxy_url(toxiproxy_url)
    ports = {name: free_port() for name in ("mock", "proxy", "app", "openai", "claude")}
    experiment = tmp_path / GAMEDAY.name
    experiment.write_text(on_this_machine(shorter(GAMEDAY.read_text()), ports))
    (tmp_path / "prompts").symlink_to(GAMEDAY.parent / "prompts")
    # Toxiproxy with the stack's proxies, as its -config file gives them at start.
    config = json.loads(TOXIPROXY_CONFIG.read_text())
    for entry in config:
        entry["listen"] = f"127.0.0.1:{ports[entry['name']]}"
        entry["upstream"] = f"127.0.0.1:{ports['proxy']}"
    populated = httpx.post(f"{api}/populate", json=config, timeout=10)
    assert populated.status_code == 201, populated.text
    aichaos = [sys.executable, "-m", "aichaos"]
    commands = {
        "mock": [*aichaos, "mock", "--port", str(ports["mock"])],
        "proxy": [
            *aichaos, "proxy", "--port", str(ports["proxy"]),
            "--experiment", str(experiment), "--view", "lines",
        ],
        "app": [
            sys.executable, str(ROOT / "experiments/apps/gameday/app.py"),
            "--host", "127.0.0.1", "--port", str(ports["app"]),
        ],
    }  # fmt: skip
    env = {
        **os.environ,
        "PRIMARY_BASE_URL": f"http://127.0.0.1:{ports['openai']}/openai/v1",
        "FALLBACK_BASE_URL": f"http://127.0.0.1:{ports['claude']}/claude",
        "PRIMARY_TIMEOUT": "3",
    }
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in commands}
    processes = {
        name: subprocess.Popen(
            command, stdout=logs[name], stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        for name, command in commands.items()
    }
    try:
        for name, process in processes.items():
            wait_for_port(ports[name], process)
        yield api, ports, experiment
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()
        for entry in config:
            httpx.delete(f"{api}/proxies/{entry['name']}", timeout=10)


def test_the_game_day_runs_against_its_stack(
    stack: tuple[str, dict[str, int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ports, path = stack
    monkeypatch.setenv("TOXIPROXY_URL", api)  # the faults leave `toxiproxy:` to it
    before = {name: proxies(api)[name] for name in ("openai", "claude")}
    experiment = load_experiment(path)
    assert experiment.load.duration == 60 / SPEEDUP
    result = anyio.run(functools.partial(run_experiment, experiment))
    # Its latency bound is a wall-clock upper bound: measured, but not required of a machine
    # under load (see test_experiment_examples.py); every other hypothesis must hold.
    untimed = [(c.name, c.value, c.detail) for c in result.checks if c.check != "latency"]
    assert all(c.passed for c in result.checks if c.check != "latency"), untimed
    assert result.status in ("passed", "failed") and not result.reason, result.reason
    added = {
        e["message"].split()[4].rstrip(":") for e in result.events if "toxic added" in e["message"]
    }
    assert added == {
        "aichaos_f0_latency_downstream",
        "aichaos_f1_reset_peer_downstream",
        "aichaos_f2_bandwidth_downstream",
        "aichaos_f3_slicer_downstream",
    }
    # The stack's proxies were found, not created: they are left exactly as they were.
    assert {name: proxies(api)[name] for name in ("openai", "claude")} == before
    assert not any(e["message"].startswith("network: proxy") for e in result.events)
