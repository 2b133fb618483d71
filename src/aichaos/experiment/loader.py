"""`load_experiment`: a YAML file to a validated `Experiment`, or every problem in it at once."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from aichaos.experiment.diagnostics import problems_from
from aichaos.experiment.errors import ExperimentError, Problem
from aichaos.experiment.model import Experiment
from aichaos.experiment.semantics import add_import_paths, check_experiment
from aichaos.experiment.yamlpos import Positions, load_yaml

_TOP_LEVEL_HINT = "an experiment is a mapping that starts with `version: 1`"


def load_experiment(path: str | Path) -> Experiment:
    """Read, validate and resolve an experiment file.

    Raises `ExperimentError` (exit code 2) listing every problem with its file,
    line, column and key path. Resolving imports the python target and reads the
    prompts file, so a file that loads is a file that can run.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentError(f"file {str(file)!r} does not exist", file=str(file)) from None
    except IsADirectoryError:
        raise ExperimentError(f"{str(file)!r} is a directory", file=str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"cannot read {str(file)!r}: {exc}", file=str(file)) from None
    return parse_experiment(text, file=str(file), base_dir=file.parent, source=file)


def parse_experiment(
    text: str,
    *,
    file: str | None = None,
    base_dir: Path | None = None,
    source: Path | None = None,
) -> Experiment:
    """Like `load_experiment`, from text (`base_dir` resolves relative paths and imports)."""
    base = base_dir if base_dir is not None else Path.cwd()
    data, positions, problems = load_yaml(text, file)
    if problems:
        raise ExperimentError(problems)
    if data is None:
        raise ExperimentError([Problem(f"the file is empty; {_TOP_LEVEL_HINT}", (), file, 1, 1)])
    if not isinstance(data, dict):
        mark = positions.of(())
        line, column = (mark.line, mark.column) if mark else (1, 1)
        message = f"{_TOP_LEVEL_HINT}, not a {type(data).__name__}"
        raise ExperimentError([Problem(message, (), file, line, column)])
    # `x-...` keys hold YAML anchors for reuse (as in docker-compose); they are not settings.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(problems_from(exc, data, positions, file)) from None
    add_import_paths(base)
    semantic, prompts = check_experiment(experiment, base)
    if semantic:
        raise ExperimentError([_place(p, positions, file) for p in semantic])
    experiment.attach(source, prompts)
    return experiment


def _place(problem: Problem, positions: Positions, file: str | None) -> Problem:
    mark = positions.of(problem.path)
    problem.file = file
    if mark is not None:
        problem.line, problem.column = mark.line, mark.column
    return problem
