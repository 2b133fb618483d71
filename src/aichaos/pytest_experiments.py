"""Experiment YAML files collected as pytest items (part of the aichaos pytest plugin).

`pytest --aichaos experiments/` collects every experiment file among the paths
pytest collects; the `aichaos_experiments` ini option names directories whose
experiments are collected in every run that uses the configured test paths.
Each experiment is one item; a failing one reports every check's verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from aichaos.safe_yaml import MAX_DOCUMENT_BYTES, safe_load

if TYPE_CHECKING:
    from aichaos.experiment.run_result import RunResult

_SUFFIXES = {".yaml", ".yml"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aichaos")
    group.addoption(
        "--aichaos",
        action="store_true",
        default=False,
        help="collect aichaos experiment YAML files as tests (e.g. pytest --aichaos experiments/)",
    )
    parser.addini(
        "aichaos_experiments",
        type="paths",
        default=[],
        help="directories whose aichaos experiments are collected as tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    roots: list[Path] = list(config.getini("aichaos_experiments"))
    config.stash[_ROOTS] = [r.resolve() for r in roots]
    # With no explicit paths on the command line, the experiment directories join the run.
    if roots and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args.extend(str(r) for r in roots if str(r) not in config.args)


_ROOTS = pytest.StashKey[list[Path]]()


def _wanted(config: pytest.Config, path: Path) -> bool:
    if path.suffix not in _SUFFIXES:
        return False
    if config.getoption("aichaos"):
        return True
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in config.stash.get(_ROOTS, []))


def _looks_like_experiment(path: Path) -> bool:
    """Only YAML files that are experiments (docker-compose and friends are not)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_DOCUMENT_BYTES:
            return True  # a pipe would block collection: the loader refuses it with a message
        data = safe_load(path.read_text(encoding="utf-8"))  # within limits: may be hostile
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True  # let the loader report it as the broken experiment it probably is
    return isinstance(data, dict) and "version" in data and ("target" in data or "faults" in data)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _wanted(parent.config, file_path) and _looks_like_experiment(file_path):
        return ExperimentFile.from_parent(parent, path=file_path)
    return None


class ExperimentFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ExperimentItem.from_parent(self, name=self.path.stem)


class ExperimentFailed(Exception):
    def __init__(self, result: RunResult) -> None:
        super().__init__(result.status)
        self.result = result


class ExperimentInvalid(Exception):
    pass


class ExperimentItem(pytest.Item):
    """One experiment run as a test: it passes when every hypothesis holds."""

    def runtest(self) -> None:
        import anyio

        from aichaos.experiment.errors import ExperimentError
        from aichaos.experiment.loader import load_experiment
        from aichaos.experiment.runner import run_experiment

        try:
            experiment = load_experiment(self.path)
            result = anyio.run(run_experiment, experiment)
        except ExperimentError as exc:
            raise ExperimentInvalid(exc.format()) from None
        self.user_properties.append(("aichaos_status", result.status))
        if result.status != "passed":
            raise ExperimentFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExperimentInvalid):
            return f"invalid experiment (exit 2):\n{excinfo.value}"
        if isinstance(excinfo.value, ExperimentFailed):
            return _verdicts(excinfo.value.result)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"aichaos experiment: {self.name}"


def _verdicts(result: RunResult) -> str:
    lines = [f"experiment {result.status} (exit {result.exit_code})"]
    if result.reason:
        lines.append(f"reason: {result.reason}")
    from aichaos.report.summary import check_value

    for check in result.checks:
        mark = check.verdict
        measured = check_value(check.check, check.value)
        lines.append(f"  {mark}  {check.name}: measured {measured}; {check.detail}")
    return "\n".join(lines)
