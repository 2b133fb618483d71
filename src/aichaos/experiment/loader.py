"""`load_experiment`: a YAML file to a validated `Experiment`, or every problem in it at once."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from aichaos.experiment.diagnostics import problems_from
from aichaos.experiment.errors import ExperimentError, Problem
from aichaos.experiment.model import Experiment
from aichaos.experiment.rawchecks import duration_warnings, merge, raw_problems, stage_problems
from aichaos.experiment.semantics import check_experiment, resolve_functions
from aichaos.experiment.yamlpos import Positions, load_yaml
from aichaos.paths import UnreadableFile, read_text_file
from aichaos.safe_yaml import MAX_DOCUMENT_BYTES

_TOP_LEVEL_HINT = "an experiment is a mapping that starts with `version: 1`"


def load_experiment(path: str | Path, *, resolve: bool = True) -> Experiment:
    """Read, validate and resolve an experiment file.

    Raises `ExperimentError` (exit code 2) listing every problem with its file,
    line, column and key path. Resolving imports the python target and reads the
    prompts file, so a file that loads is a file that can run. `resolve=False` skips
    the imports (the python target and checks stay unbound): for a reader of the
    experiment's backends and faults that runs no load, the proxy, so importing the
    app there neither runs its import-time code nor is refused when it cannot.
    """
    file = Path(path)
    text = read_document(file)
    return parse_experiment(
        text, file=str(file), base_dir=file.parent, source=file, resolve=resolve
    )


def read_document(file: Path) -> str:
    """The text of a YAML file a user named, refused (`ExperimentError`) when it is not a
    readable regular file of at most `MAX_DOCUMENT_BYTES` bytes of UTF-8.

    Opened without blocking, so a named pipe or a device (`/dev/zero`) is refused at
    once instead of hanging or filling memory.
    """
    try:
        text = read_text_file(file, MAX_DOCUMENT_BYTES)
    except UnreadableFile as exc:
        raise ExperimentError(str(exc), file=str(file)) from None
    return text


def parse_experiment(
    text: str,
    *,
    file: str | None = None,
    base_dir: Path | None = None,
    source: Path | None = None,
    resolve: bool = True,
) -> Experiment:
    """Like `load_experiment`, from text (`base_dir` resolves relative paths and imports).

    Reading and checking the text changes nothing outside; importing the functions it
    names is a step of its own (`resolve_functions`), with `sys.path` changed only then.
    """
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
        # The context lets a fault read a file next to the experiment (`raw`'s `file`).
        experiment = Experiment.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        # every mistake in one pass: add what the schema skips once it refuses a section
        found = raw_problems(data) + stage_problems(data)
        extra = [_place(p, positions, file) for p in found]
        raise ExperimentError(merge(problems_from(exc, data, positions, file), extra)) from None
    semantic, prompts = check_experiment(experiment, base)
    semantic += stage_problems(data)
    if resolve:
        semantic += resolve_functions(experiment, base)
    if semantic:
        raise ExperimentError([_place(p, positions, file) for p in semantic])
    warnings = [_place(w, positions, file) for w in duration_warnings(experiment, data)]
    experiment.attach(source, prompts, warnings)
    return experiment


def _place(problem: Problem, positions: Positions, file: str | None) -> Problem:
    mark = positions.of(problem.path)
    problem.file = file
    if mark is not None:
        problem.line, problem.column = mark.line, mark.column
    return problem
