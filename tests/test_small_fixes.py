"""Smaller things users tripped on: one message for a typo in a live fault, a rate limiter
per backend, `--upstream` serving only what it names, JUnit's `file`, aligned summaries."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import anyio
import httpx
import pytest

from aichaos.cli import main
from aichaos.commands.proxy import build_settings
from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.errors import ExperimentError
from aichaos.faults.base import parse_fault
from aichaos.faults.engine import FaultEngine
from aichaos.providers import get_provider
from aichaos.proxy import serve_proxy_in_thread
from aichaos.pytest_plugin import Chaos
from aichaos.records import Attempt
from aichaos.report.junit import write_junit
from conftest import Cli
from proxy_helpers import make_session
from test_engine import chat_request

TESTS = Path(__file__).parent
TYPO = "unknown key 'dealy'; expected one of kind, name, backend"
HINT = "(did you mean 'delay'?)"


def test_a_live_fault_typo_gets_the_files_message(capsys: pytest.CaptureFixture[str]) -> None:
    text = "version: 1\ntarget: {python: 'experiment_targets:echo'}\nload: {requests: 1}\n"
    with pytest.raises(ExperimentError) as from_file:
        parse_experiment(text + "faults: [{kind: latency, dealy: 2s}]\n", base_dir=TESTS)
    assert TYPO in str(from_file.value) and HINT in str(from_file.value)
    assert main(["fault", "add", "kind=latency", "dealy=2s"]) == 2  # refused before sending
    err = capsys.readouterr().err
    assert TYPO in err and HINT in err
    with serve_proxy_in_thread(make_session({"openai": "openai"})) as proxy:
        answer = httpx.post(proxy.admin_url + "/faults", json={"kind": "latency", "dealy": "2s"})
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert TYPO in message and HINT in message
    assert main(["fault", "add", "kind=latency", "delay=1s", "window.strat=1s"]) == 2
    assert "unknown key 'strat'; expected one of start, duration (did you mean 'start'?)" in (
        capsys.readouterr().err
    )


def test_rate_limiter_for_every_backend_counts_each_separately() -> None:
    provider = get_provider("openai")
    engine = FaultEngine([parse_fault({"kind": "rate_limiter", "backend": "*", "rpm": 1})])

    def status(backend: str) -> int:
        req = chat_request(backend=backend)
        plan = engine.plan(req, provider, provider.dialect_for(req.method, req.path))
        return plan.reply.status if plan.reply else 200

    assert [status("openai"), status("claude"), status("openai"), status("claude")] == [
        200,
        200,
        429,
        429,
    ]


def test_upstream_alone_serves_only_the_backends_it_names() -> None:
    assert list(build_settings(None, ["claude=mock"]).backends) == ["claude"]
    assert list(build_settings(None, []).backends) == ["openai", "anthropic", "gemini", "azure"]


def test_junit_names_the_experiment_file(tmp_path: Path) -> None:
    text = (
        "version: 1\ntarget: {python: 'experiment_targets:echo'}\nload: {requests: 1}\n"
        "phases: {baseline: false, recovery: false}\nhypothesis: [{check: success_rate, min: 1}]\n"
    )
    source = Path("checks") / "echo.yaml"
    experiment = parse_experiment(text, base_dir=TESTS, source=source)
    result = anyio.run(run_experiment, experiment)
    suite = ET.parse(write_junit(result, tmp_path / "junit.xml")).getroot()[0]
    (case,) = suite.findall("testcase")
    assert case.get("file") == str(source) and case.get("classname") == "aichaos.echo"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["file"] == str(source)


def test_pytest_summary_columns_line_up() -> None:
    chaos = Chaos("test_x", [], {"openai": "openai", "claude-fallback": "anthropic"}, 0)
    common = {"provider": "openai", "model": None, "stream": False}
    chaos.injection.recorder.attempts.extend(
        [
            Attempt("openai", method="POST", path="/v1/chat/completions", status=200, **common),
            Attempt(
                "claude-fallback",
                method="POST",
                path="/v1/messages",
                call_id="call-17",
                faults=["rate_limit(requests)"],
                status=429,
                **common,
            ),
        ]
    )
    _, first, second = chaos.summary().splitlines()
    assert first.index("POST") == second.index("POST")
    assert first.index("->") == second.index("->")


def test_mock_options_of_replay_need_replay(cli: Cli) -> None:
    for flags in (["--on-miss", "mock"], ["--speed", "2"]):
        run = cli("mock", *flags, "--port", "0")
        assert run.returncode == 2
        assert f"{flags[0]} only apply with --replay DIR" in run.stderr


def test_mock_on_port_0_prints_the_port_it_listens_on() -> None:
    """A real `aichaos mock` process (only a process shows what it prints before serving)."""
    mock = subprocess.Popen(
        [sys.executable, "-m", "aichaos", "mock", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert mock.stdout is not None
        banner = mock.stdout.readline()
        base = banner.split()[4]  # "aichaos mock backend on http://127.0.0.1:PORT ..."
        assert not base.endswith(":0") and int(base.rsplit(":", 1)[1]) > 0
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{base}/v1/chat/completions", json=chat, timeout=30)
        assert answer.status_code == 200
    finally:
        mock.terminate()
        mock.wait(30)
