"""Ctrl-C under open-loop overload, in a real `aichaos run` process (only a process can show
that it exits): a sync target blocks in hundreds of worker threads and the run still ends at
once, its outputs written; later Ctrl-Cs during the cleanup are quiet and lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
EXPERIMENT = """\
version: 1
target: {python: 'blocking_target:touch_then_block'}
load: {rate: 300/s, duration: 60s, timeout: 60s, prompts: ['30']}
phases: {baseline: false, recovery: false}
hypothesis: [{check: success_rate, min: 1}]
"""
HANG = 10.0
"""Seconds after which a run that has not exited is hung (a hang check, not a timing claim:
the run is expected to exit within about 2 s of the first Ctrl-C)."""


@pytest.mark.parametrize("signals", [1, 3], ids=["one-ctrl-c", "three-quick-ctrl-cs"])
def test_ctrl_c_under_overload_exits_at_once_with_its_outputs(tmp_path: Path, signals: int) -> None:
    path, journal, marker = tmp_path / "e.yaml", tmp_path / "j.json", tmp_path / "called"
    path.write_text(EXPERIMENT)
    env = {**os.environ, "PYTHONPATH": str(TESTS), "AICHAOS_TEST_MARKER": str(marker)}
    command = [sys.executable, "-m", "aichaos", "run", "--quiet", str(path)]
    runner = subprocess.Popen(
        [*command, "--journal", str(journal)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():  # calls are blocking in worker threads
            assert runner.poll() is None and time.monotonic() < deadline, "no call was made"
            time.sleep(0.02)
        for _ in range(signals):
            runner.send_signal(signal.SIGINT)
            time.sleep(0.05)
        deadline = time.monotonic() + HANG
        while runner.poll() is None:
            assert time.monotonic() < deadline, f"still running {HANG:g} s after Ctrl-C"
            time.sleep(0.02)
        err = runner.stderr.read() if runner.stderr else ""
    finally:
        runner.kill()
        runner.wait()
    assert runner.returncode == 3, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    record = json.loads(journal.read_text())
    assert record["status"] == "interrupted"
    assert record["calls"]  # the calls made before the interrupt are kept


def test_ctrl_c_while_the_command_loads_is_quiet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while the command's modules still load (seconds on a loaded machine, before the
    command handles signals itself): "interrupted" and exit 3, not a KeyboardInterrupt
    traceback. A real SIGINT, delivered in the middle of that import, in-process."""
    from aichaos import cli

    def interrupted_import(name: str) -> object:
        signal.raise_signal(signal.SIGINT)  # Python's own handler raises KeyboardInterrupt
        raise AssertionError("the SIGINT did not interrupt the import")

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    monkeypatch.setattr(cli.importlib, "import_module", interrupted_import)
    try:
        code = cli.main(["run", "whatever.yaml"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 3
    assert capsys.readouterr().err == "interrupted\n"
