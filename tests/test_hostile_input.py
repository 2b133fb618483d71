"""Hostile and broken input: exit 2 with the file and line, never a traceback, never a hang.

YAML alias bombs, deep nesting, control characters, pipes and devices given as files,
output paths that cannot be written, out-of-range and non-finite numbers on the command
line, and experiments that `validate` must refuse exactly when `run` would.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aichaos.cassette.format import MAX_FILE_BYTES
from aichaos.cli import build_parser, main
from aichaos.experiment.errors import ExperimentError
from aichaos.experiment.loader import load_experiment, parse_experiment
from aichaos.faults.spec import FaultSpecError, parse_yaml
from aichaos.intercept.injection import Injection
from aichaos.pytest_experiments import _looks_like_experiment

TESTS = Path(__file__).parent
HEAD = "version: 1\ntarget: {python: 'experiment_targets:echo'}\nload: {requests: 1}\n"


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """A few hundred bytes that expand to width**levels values when aliases are followed."""
    lines = ["x-a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"x-a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _finishes(job: Callable[[], Any], seconds: float = 60.0) -> Any:
    """Run `job` in a thread; fail (instead of hanging the suite) if it does not return.
    Its result is returned, its exception raised here."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(job())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the command did not return: it hangs on this input"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


@pytest.mark.parametrize(
    "text, line, message",
    [
        (HEAD + alias_bomb(), 8, "expands to more than"),
        (HEAD + "tags: " + "[" * 5_000 + "]" * 5_000 + "\n", 4, "nested deeper than"),
        (HEAD + "title: bad \x07 bell\n", 4, "is not allowed"),
        (HEAD + "title: " + "[a, " * 70 + "b" + "]" * 70 + "\n", 4, "nested deeper than"),
        # PyYAML's constructors raise ValueError for these, not a YAMLError
        (HEAD + "seed: " + "9" * 5_000 + "\n", 4, "cannot read the value"),
        (HEAD + "title: 2024-13-45\n", 4, "cannot read the value '2024-13-45'"),
    ],
    ids=[
        "alias-bomb",
        "deep-nesting",
        "control-character",
        "nesting-just-over",
        "5000-digit-integer",
        "no-such-date",
    ],
)
def test_hostile_yaml_is_a_problem_with_a_line(
    tmp_path: Path, text: str, line: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    for command in (["validate"], ["run"], ["run", "--dry-run"]):
        assert _finishes(lambda c=command: main([*c, str(path)])) == 2  # type: ignore[misc]
        err = capsys.readouterr().err
        assert f"{path}:{line}:" in err and message in err and "Traceback" not in err


def test_proxy_refuses_a_hostile_experiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(HEAD + alias_bomb())
    assert _finishes(lambda: main(["proxy", "--port", "0", "--experiment", str(path)])) == 2
    assert "expands to more than" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_pipes_and_devices_are_refused_at_once(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    for path in (pipe, Path("/dev/zero")):
        with pytest.raises(ExperimentError, match="not a regular file"):
            _finishes(lambda p=path: load_experiment(p))  # type: ignore[misc]
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(9 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(ExperimentError, match="larger than"):
        load_experiment(big)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize(
    "key, text",
    [
        ("raw file", HEAD + "faults: [{kind: raw, file: NAMED}]"),
        ("raw recorded", HEAD + "faults: [{kind: raw, recorded: 'NAMED:1'}]"),
        ("prompts file", HEAD.replace("{requests: 1}", "{requests: 1, prompts_file: NAMED}")),
    ],
)
def test_files_an_experiment_names_are_no_pipes_or_devices(
    tmp_path: Path, key: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file an experiment names is read like the experiment itself: a named pipe
    blocked `validate` forever, `/dev/zero` filled memory."""
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    for named in (pipe, Path("/dev/zero")):
        path = tmp_path / "names.yaml"
        path.write_text(text.replace("NAMED", str(named)) + "\n")
        assert _finishes(lambda p=path: main(["validate", str(p)])) == 2, key  # type: ignore[misc]
        err = capsys.readouterr().err
        assert "not a regular file" in err and "Traceback" not in err, err


def test_a_raw_answer_file_is_read_within_the_yaml_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = tmp_path / "answer.yaml"
    answer.write_text(alias_bomb() + "status: 500\n")
    path = tmp_path / "raw.yaml"
    path.write_text(HEAD + f"faults: [{{kind: raw, file: {answer}}}]\n")
    assert _finishes(lambda: main(["validate", str(path)])) == 2
    err = capsys.readouterr().err
    assert "expands to more than" in err and "Traceback" not in err


def test_a_recorded_cassette_is_read_within_the_cassette_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cassette without newlines was read whole to find its line; it is refused as a
    cassette directory refuses it."""
    cassette = tmp_path / "huge.jsonl"
    with cassette.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    path = tmp_path / "raw.yaml"
    path.write_text(HEAD + f"faults: [{{kind: raw, recorded: '{cassette}:1'}}]\n")
    assert _finishes(lambda: main(["validate", str(path)])) == 2
    err = capsys.readouterr().err
    assert "larger than 256 MiB" in err and "Traceback" not in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_pytest_collection_sniffs_yaml_files_within_the_limits(tmp_path: Path) -> None:
    """The plugin peeks into every YAML file under its roots: an alias bomb filled memory
    and a named pipe blocked collection. Both are handed to the loader, which refuses them."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(HEAD + alias_bomb())
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    for path in (bomb, pipe):
        assert _finishes(lambda p=path: _looks_like_experiment(p)) is True  # type: ignore[misc]


def test_live_fault_values_python_cannot_build_are_spec_errors() -> None:
    """The admin API and `aichaos fault add --yaml` share `parse_yaml`: a 5,000-digit
    number gave the admin API a 500 and the CLI a traceback."""
    with pytest.raises(FaultSpecError, match="cannot read the value"):
        parse_yaml('{"kind": "latency", "delay": ' + "9" * 5_000 + "}", "JSON")


def test_output_paths_are_checked_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "called"
    monkeypatch.setenv("AICHAOS_TEST_MARKER", str(marker))
    experiment = tmp_path / "e.yaml"
    experiment.write_text(HEAD.replace("echo", "touch"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = ["run", str(experiment), "--journal", str(blocker / "j.json"), "--html", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and "is a directory" in err
    assert not marker.exists()  # nothing ran


@pytest.mark.parametrize(
    "argv",
    [
        ["mock", "--port", "99999"],
        ["mock", "--port", "-1"],
        ["mock", "--latency", "-1"],
        ["mock", "--ttft", "nan"],
        ["mock", "--tokens-per-second", "0"],
        ["proxy", "--port", "99999"],
        ["proxy", "--upstream-timeout", "-1"],
        ["proxy", "--upstream-timeout", "nan"],
        ["proxy", "--upstream-timeout", "inf"],
        ["proxy", "--upstream-timeout", "0"],
        ["run", "x.yaml", "--metrics-port", "70000"],
        ["run", "x.yaml", "--seed", "-1"],
    ],
)
def test_numeric_flags_are_validated(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_time_flags_take_durations() -> None:
    parser, _ = build_parser()
    mock = parser.parse_args(["mock", "--latency", "200ms", "--ttft", "2s"])
    assert (mock.latency, mock.ttft) == (0.2, 2.0)
    assert parser.parse_args(["proxy", "--upstream-timeout", "2m"]).upstream_timeout == 120.0
    assert parser.parse_args(["proxy", "--upstream-timeout", "45"]).upstream_timeout == 45.0


def test_validate_refuses_network_faults_without_toxiproxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "toxiproxy", None)  # as if the extra were not installed
    path = tmp_path / "net.yaml"
    path.write_text(
        HEAD + "faults: [{kind: network, backend: openai, toxic: latency, latency: 1s}]\n"
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4:" in err and "aichaos[toxiproxy]" in err


def test_two_backends_of_one_provider_are_fine_out_of_process() -> None:
    text = (
        "version: 1\nbackends: {a: openai, b: openai}\n"
        "target:\n  command:\n    run: 'sleep 1'\n    ready: 'http://127.0.0.1:{{port}}/'\n"
        "    http: {url: 'http://127.0.0.1:{{port}}/chat'}\nload: {requests: 1}\n"
    )
    experiment = parse_experiment(text, base_dir=TESTS)
    injection = Injection((), backends=experiment.backends)  # what the runner builds: no error
    with pytest.raises(ValueError, match="both claim host"), injection:
        pass  # only interception in-process needs each host claimed once
    with pytest.raises(ExperimentError, match="both claim host"):
        parse_experiment(text.split("target:")[0] + HEAD.split("\n", 1)[1], base_dir=TESTS)


def test_every_mistake_is_reported_in_one_pass() -> None:
    text = (
        "version: 1\nbackends: {openai: openai}\ntarget: {python: 'experiment_targets:echo'}\n"
        "load: {requests: 4, concurrency: 2, rate: 5/s, timeout: 10q}\n"
        "faults: [{backend: opneai, kind: latency, delay: 2s}]\n"
        "hypothesis: [{check: served_by, backend: opnai, min_share: 0.5}]\n"
    )
    with pytest.raises(ExperimentError) as error:
        parse_experiment(text, file="e.yaml", base_dir=TESTS)
    found = {(p.path, p.line) for p in error.value.problems}
    assert found == {
        (("load", "timeout"), 4),
        (("load",), 4),
        (("faults", 0, "backend"), 5),
        (("hypothesis", 0, "backend"), 6),
    }
    assert "did you mean 'openai'" in str(error.value)


def test_implausible_bare_durations_are_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    checks = "hypothesis: [{check: latency, percentile: 95, max: 500}, {check: ttft, max: 2}]\n"
    experiment = parse_experiment(HEAD + checks, file="e.yaml", base_dir=TESTS)
    (warning,) = experiment.warnings
    assert warning.path == ("hypothesis", 0, "max") and warning.line == 4
    assert "500 seconds" in warning.message and "500ms" in warning.message
    quiet = parse_experiment(HEAD + checks.replace("500", "500ms"), base_dir=TESTS)
    assert quiet.warnings == []
    long_phase = HEAD.replace("{requests: 1}", "{duration: 600}")
    assert parse_experiment(long_phase, base_dir=TESTS).warnings == []


def test_dry_run_shows_fault_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(HEAD + "faults: [{kind: latency, delay: 250ms}, {kind: error, status: 418}]\n")
    assert main(["run", "--dry-run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "latency on *, delay=250ms distribution=fixed" in out
    assert "status=418" in out
