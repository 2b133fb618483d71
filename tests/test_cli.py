"""The command line's own behaviour: help, usage errors, `faults`, `demo`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aichaos.cli import COMMANDS, main
from aichaos.faults.base import fault_kinds


def test_help_lists_every_command_and_no_command_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert main([]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_faults_lists_every_kind_and_suggests_on_typos(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faults", "--json"]) == 0
    listed = {k["kind"] for k in json.loads(capsys.readouterr().out)}
    assert listed == set(fault_kinds())
    assert main(["faults", "rate_limt"]) == 2
    assert "did you mean 'rate_limit'" in capsys.readouterr().out


def test_demo_shows_a_fault_hitting_a_real_sdk_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "rate_limit(requests)" in out and "429" in out
    assert "call-1: ok" in out


def test_version_and_one_command_import_only_what_they_need() -> None:
    # A fresh interpreter: which aichaos.commands modules does each entry import?
    probe = (
        "import sys, contextlib, io\n"
        "from aichaos.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(sys.argv[1:])\n"
        "print(code, sorted(m for m in sys.modules if m.startswith('aichaos.commands.')))\n"
    )
    runs = {
        args: subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        ).stdout.split(" ", 1)
        for args in (("--version",), ("faults",))
    }
    assert runs[("--version",)] == ["0", "[]\n"]
    assert runs[("faults",)] == ["0", "['aichaos.commands.faults']\n"]


_IMPORTS_PROBE = (
    "import sys, contextlib, io\n"
    "before = set(sys.modules)\n"
    "from aichaos.cli import build_parser, main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    if sys.argv[1:] == ['every-parser']:\n"
    "        build_parser()\n"
    "    else:\n"
    "        main(sys.argv[1:])\n"
    "print(' '.join(sorted(set(sys.modules) - before)))\n"
)


def _imported(*args: str) -> set[str]:
    """The modules a fresh interpreter imports to run the CLI with `args` (`every-parser`:
    to build the parser of every command, without running one)."""
    run = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, *args], capture_output=True, text=True, check=True
    )
    return set(run.stdout.split())


def _third_party(modules: set[str]) -> set[str]:
    tops = {name.split(".", 1)[0] for name in modules}
    return tops - set(sys.stdlib_module_names) - {"aichaos"}


def test_version_help_and_parsers_import_no_subsystem() -> None:
    # --version and --help print and exit: aichaos and its CLI module, not even argparse or
    # typing. Building every command's parser imports the command modules and their option
    # helpers, and no third-party package: pydantic, the fault registry, the proxy's or the
    # mock's stack load when a command runs (a duration option loads its parser when given).
    for args in (("--version",), ("--help",)):
        modules = _imported(*args)
        assert {m for m in modules if m.startswith("aichaos")} == {"aichaos", "aichaos.cli"}
        assert not _third_party(modules)
        assert not modules & {"argparse", "typing"}
    modules = _imported("every-parser")
    ours = {m for m in modules if m.startswith("aichaos")}
    allowed = {"aichaos", "aichaos.cli", "aichaos.commands", "aichaos.paths"}
    allowed |= {f"aichaos.commands.{module}" for module, _ in COMMANDS.values()}
    allowed.add("aichaos.commands.options")
    assert ours <= allowed, sorted(ours - allowed)
    assert not _third_party(modules)
