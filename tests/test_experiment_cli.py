"""`aichaos run / validate / schema` from the command line: exit codes, dry run, help.

In-process through the CLI's entry function (the `cli` fixture); one test runs
`python -m aichaos` as a user does.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aichaos.cli import COMMANDS
from conftest import Cli

TESTS = Path(__file__).parent
ROOT = TESTS.parent


@pytest.fixture
def aichaos(cli: Cli) -> Cli:
    """`aichaos ARGS` in tests/ (where the experiments' `experiment_targets` module is)."""
    return functools.partial(cli, cwd=TESTS)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


PASSING = """\
version: 1
seed: 3
target: {python: "experiment_targets:echo"}
load: {requests: 3}
phases: {baseline: false, recovery: false}
hypothesis: [{check: success_rate, min: 1}]
"""


def test_commands_are_registered() -> None:
    for name in ("run", "validate", "schema"):
        assert name in COMMANDS


def test_help_lists_the_commands_and_imports_no_command() -> None:
    """End to end, as a user runs it. Its speed is measured in benchmarks/bench_cli.py;
    here, what makes it fast: no command module, SDK or HTTP client is imported."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['aichaos', '--help']\n"
        "try:\n    runpy.run_module('aichaos', run_name='__main__')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('aichaos.commands', 'openai',"
        " 'anthropic', 'httpx', 'pydantic', 'yaml', 'anyio')))\n"
        "print('HEAVY', heavy, code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    for name in ("run", "validate", "schema"):
        assert f"\n  {name} " in done.stdout
    assert done.stdout.splitlines()[-1] == "HEAVY [] 0"


def test_run_help_names_every_option(aichaos: Cli) -> None:
    done = aichaos("run", "--help")
    for option in (
        "--seed",
        "--journal",
        "--junit",
        "--html",
        "--markdown",
        "--dry-run",
        "--quiet",
    ):
        assert option in done.stdout


def test_schema_command_prints_the_json_schema(tmp_path: Path, aichaos: Cli) -> None:
    done = aichaos("schema")
    schema = json.loads(done.stdout)
    assert done.returncode == 0
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"version", "target", "load", "faults", "hypothesis", "stop_when"} <= set(
        schema["properties"]
    )
    assert aichaos("schema", "-o", str(tmp_path / "s.json")).returncode == 0
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_dry_run_sends_nothing(tmp_path: Path, aichaos: Cli) -> None:
    marker = tmp_path / "called"
    path = write(
        tmp_path / "e.yaml", PASSING.replace("experiment_targets:echo", "experiment_targets:touch")
    )
    done = aichaos("run", "--dry-run", str(path), env={"AICHAOS_TEST_MARKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert "inject: 3 requests, closed loop, concurrency 1" in done.stdout
    assert "seed: 3 (the file)" in done.stdout
    assert "dry run: nothing was sent" in done.stdout
    assert not marker.exists()


def test_exit_codes_and_seed_override(tmp_path: Path, aichaos: Cli) -> None:
    passing = write(tmp_path / "pass.yaml", PASSING)
    failing = write(
        tmp_path / "fail.yaml", PASSING.replace("min: 1}", "min: 1}, {check: ttft, max: 1s}")
    )
    aborting = write(
        tmp_path / "abort.yaml",
        PASSING.replace("experiment_targets:echo", "experiment_targets:leaky")
        .replace(
            "hypothesis:", "stop_when: [{check: error_rate, max: 0.5, min_calls: 2}]\nhypothesis:"
        )
        .replace("requests: 3", "duration: 5s"),
    )
    journal = tmp_path / "j.json"
    done = aichaos("run", "--quiet", "--seed", "99", "--journal", str(journal), str(passing))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(journal.read_text())["seed"] == 99
    assert aichaos("run", "--quiet", str(failing)).returncode == 1
    done = aichaos("run", "--quiet", str(aborting))
    assert done.returncode == 3 and "ABORTED" in done.stdout and "stop_when" in done.stdout
    assert aichaos("run", "--quiet", str(passing), str(failing), str(aborting)).returncode == 3
    assert aichaos("run", str(tmp_path / "missing.yaml")).returncode == 2
    assert aichaos("run").returncode == 2  # usage


def test_quiet_output_is_short(tmp_path: Path, aichaos: Cli) -> None:
    done = aichaos("run", "--quiet", str(write(tmp_path / "e.yaml", PASSING)))
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("e (") and "seed 3" in lines[0]
    assert any(line.startswith("done inject: 3 calls, 3 ok (100%)") for line in lines)
    assert "PASSED" in lines[-1] and "exit 0" in lines[-1]
    assert not any(line.startswith("phase ") for line in lines)


def test_an_output_that_fails_to_write_after_the_run_is_reported_and_the_rest_kept(
    tmp_path: Path, aichaos: Cli
) -> None:
    # /dev/full passes the check before the run (it is writable) and fails the write itself
    journal = tmp_path / "j.json"
    done = aichaos(
        "run", "--quiet", str(write(tmp_path / "e.yaml", PASSING)),
        "--markdown", "/dev/full", "--journal", str(journal),
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--markdown /dev/full: cannot write it" in done.stderr
    assert json.loads(journal.read_text())["format"] == "aichaos-journal"


def test_validate_counts_in_words(tmp_path: Path, aichaos: Cli) -> None:
    one = write(tmp_path / "one.yaml", PASSING + "faults: [{backend: openai, kind: outage}]\n")
    done = aichaos("validate", str(one))
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("; 1 fault, 1 check)\n"), done.stdout
