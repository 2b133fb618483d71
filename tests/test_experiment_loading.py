"""Bad input: every mistake in an experiment file is reported precisely, never as a traceback."""

from __future__ import annotations

import copy
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from aichaos.experiment import ExperimentError, load_experiment, parse_experiment
from conftest import Cli

TESTS = Path(__file__).parent
EXAMPLES = TESTS.parent / "experiments"

VALID = """\
version: 1
title: ok
backends:
  openai: {provider: openai}
  claude: {provider: anthropic}
target:
  python: experiment_targets:echo
load:
  requests: 4
  concurrency: 2
faults:
  - backend: openai
    kind: outage
hypothesis:
  - check: success_rate
    min: 0.9
"""


def problems(text: str, base_dir: Path = TESTS) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(textwrap.dedent(text), file="exp.yaml", base_dir=base_dir)
    return info.value


def edit(replace: str, by: str) -> str:
    assert replace in VALID
    return VALID.replace(replace, by)


def test_the_base_file_is_valid() -> None:
    experiment = parse_experiment(VALID, base_dir=TESTS)
    assert experiment.target.kind == "python"
    assert experiment.faults[0].kind == "outage"
    assert [p.text for p in experiment.prompts] == ["Say hello in one short sentence."]


# (text, path in the message, line, column, words that must appear)
CASES: list[tuple[str, str, str, int | None, list[str]]] = [
    ("empty", "", "(top level)", 1, ["empty", "version: 1"]),
    ("a list", "- 1\n- 2\n", "(top level)", 1, ["not a list"]),
    ("bad yaml", "version: 1\ntarget: [a, b\n", "(top level)", 3, ["invalid YAML"]),
    ("tab indent", "version: 1\ntarget:\n\tpython: x:y\n", "(top level)", 3, ["invalid YAML"]),
    ("duplicate key", edit("title: ok", "title: ok\ntitle: again"), "title", 3, ["duplicate"]),
    ("no version", edit("version: 1\n", ""), "version", 1, ["missing required key 'version'"]),
    ("version 2", edit("version: 1", "version: 2"), "version", 1, ["one of 1"]),
    (
        "no target",
        edit("target:\n  python: experiment_targets:echo\n", ""),
        "target",
        1,
        ["missing required key 'target'"],
    ),
    (
        "two targets",
        edit("  python: experiment_targets:echo", "  python: a:b\n  http: http://x"),
        "target",
        7,
        ["exactly one of python, http or command", "python and http"],
    ),
    ("top-level typo", edit("faults:", "fautls:"), "fautls", 11, ["unknown key", "'faults'"]),
    ("wrong type", edit("requests: 4", "requests: four"), "load.requests", 9, ["integer"]),
    ("bad duration", edit("requests: 4", "duration: 5 minutes"), "load.duration", 9, ["250ms"]),
    ("bad rate", edit("concurrency: 2", "rate: 20 per sec"), "load.rate", 10, ["20/s"]),
    (
        "concurrency and rate",
        edit("concurrency: 2", "concurrency: 2\n  rate: 5/s"),
        "load",
        9,
        ["not both"],
    ),
    ("no size", edit("requests: 4", "timeout: 1s"), "load", 9, ["requests", "duration"]),
    (
        "unknown fault kind",
        edit("kind: outage", "kind: outtage"),
        "faults[0].kind",
        13,
        ["unknown fault kind 'outtage'", "did you mean 'outage'"],
    ),
    (
        "fault without kind",
        edit("    kind: outage\n", ""),
        "faults[0]",
        12,
        ["missing 'kind'"],
    ),
    (
        "unknown fault parameter",
        edit("kind: outage", "kind: outage\n    statuss: 503"),
        "faults[0].statuss",
        14,
        ["unknown key", "did you mean 'status'"],
    ),
    (
        "enum typo",
        edit("kind: outage", "kind: stream_cut\n    mode: dropp"),
        "faults[0].mode",
        14,
        ["'dropp'", "did you mean 'drop'"],
    ),
    (
        "unknown backend in fault",
        edit("backend: openai", "backend: opena"),
        "faults[0].backend",
        12,
        ["no backend is named 'opena'", "did you mean 'openai'"],
    ),
    (
        "unknown check",
        edit("check: success_rate", "check: sucess_rate"),
        "hypothesis[0].check",
        15,
        ["unknown check", "did you mean 'success_rate'"],
    ),
    (
        "check bound of the wrong type",
        edit("min: 0.9", "min: high"),
        "hypothesis[0].min",
        16,
        ["got 'high'; expected a number"],
    ),
    (
        "served_by unknown backend",
        edit("min: 0.9", "min: 0.9\n  - check: served_by\n    backend: claud\n    min_share: 1"),
        "hypothesis[1].backend",
        18,
        ["did you mean 'claude'"],
    ),
    (
        "unknown provider",
        edit("provider: anthropic", "provider: anthropik"),
        "backends.claude.provider",
        5,
        ["did you mean 'anthropic'"],
    ),
    (
        "module does not import",
        edit("experiment_targets:echo", "no_such_module:answer"),
        "target.python",
        7,
        ["cannot import module 'no_such_module'"],
    ),
    (
        "function missing",
        edit("experiment_targets:echo", "experiment_targets:ehco"),
        "target.python",
        7,
        ["has no attribute 'ehco'", "did you mean 'echo'"],
    ),
    (
        "not callable",
        edit("experiment_targets:echo", "experiment_targets:VALUE"),
        "target.python",
        7,
        ["not a function"],
    ),
    (
        "module raises on import",
        edit("experiment_targets:echo", "experiment_broken_import:answer"),
        "target.python",
        7,
        ["ZeroDivisionError", "experiment_broken_import.py:3"],
    ),
    (
        "bad function spec",
        edit("experiment_targets:echo", "experiment_targets.echo"),
        "target.python",
        7,
        ["expected `module:function`", "got 'experiment_targets.echo'"],
    ),
    (
        "prompts file missing",
        edit("concurrency: 2", "concurrency: 2\n  prompts_file: nowhere.jsonl"),
        "load.prompts_file",
        11,
        ["does not exist", "nowhere.jsonl"],
    ),
    (
        "phase switched off",
        edit("min: 0.9", "min: 0.9\n    phase: recovery\nphases:\n  recovery: false"),
        "hypothesis[0].phase",
        17,
        ["switched off"],
    ),
    (
        "window outside stop_when",
        edit("min: 0.9", "min: 0.9\n    window: 2s"),
        "hypothesis[0].window",
        17,
        ["only applies to stop_when"],
    ),
    (
        "recovery_time in stop_when",
        edit("min: 0.9", "min: 0.9\nstop_when:\n  - check: recovery_time\n    max: 1s"),
        "stop_when[0].check",
        18,
        ["sliding window"],
    ),
    (
        "invalid regex",
        edit("min: 0.9", "min: 0.9\n  - check: response\n    regex: '(unclosed'"),
        "hypothesis[1].regex",
        18,
        ["invalid regular expression"],
    ),
    (
        "invalid json schema",
        edit("min: 0.9", "min: 0.9\n  - check: response\n    json_schema: {type: 12}"),
        "hypothesis[1].json_schema",
        18,
        ["invalid JSON Schema"],
    ),
    (
        "bad status class",
        edit("min: 0.9", "min: 0.9\n  - check: status\n    forbidden: [6xx]"),
        "hypothesis[1].forbidden[0]",
        18,
        ["5xx"],
    ),
    (
        "bad backend name",
        edit("claude: {provider: anthropic}", "'my claude': {provider: anthropic}"),
        "backends",
        4,
        ["letters, digits"],
    ),
    (
        "two backends on one host",
        edit("claude: {provider: anthropic}", "openai2: {provider: openai}"),
        "backends",
        4,
        ["both claim host"],
    ),
    (
        "template variable typo",
        edit(
            "  python: experiment_targets:echo",
            "  http: {url: 'http://127.0.0.1:1/x', json: {q: '{{promt}}'}}",
        ),
        "target.http.json",
        7,
        ["{{promt}}", "did you mean {{prompt}}"],
    ),
    (
        "template backend typo",
        edit(
            "  python: experiment_targets:echo",
            "  http: {url: 'http://127.0.0.1:1/x', json: {base: '{{backends.opena.url}}'}}",
        ),
        "target.http.json",
        7,
        ["{{backends.opena.url}}: unknown backend 'opena' (did you mean 'openai'?)"],
    ),
    (
        "port outside command",
        edit("  python: experiment_targets:echo", "  http: 'http://127.0.0.1:{{port}}/x'"),
        "target.http.url",
        7,
        ["unknown template variable {{port}}"],
    ),
    (
        "faults without inject",
        edit("faults:", "phases:\n  inject: false\nfaults:"),
        "phases.inject",
        12,
        ["only act in the inject phase"],
    ),
    (
        "python check missing",
        edit("min: 0.9", "min: 0.9\n  - check: python\n    function: experiment_targets:nope"),
        "hypothesis[1].function",
        18,
        ["has no attribute 'nope'"],
    ),
    (
        "recursive alias",
        "version: 1\ntarget: &t {python: *t}\n",
        "target.python",
        2,
        ["an alias refers to a collection that contains it"],
    ),
    (
        "fault written as a word",
        edit("  - backend: openai\n    kind: outage\n", "  - outage\n"),
        "faults[0]",
        12,
        ["expected a mapping like {kind: outage, ...}"],
    ),
    (
        "target written as a word",
        edit("  python: experiment_targets:echo\n", "  echo\n"),
        "target",
        7,
        ["got 'echo'; expected a mapping"],
    ),
    (
        "ready and no http",
        edit(
            "  python: experiment_targets:echo",
            "  command: {run: 'sleep 1', ready: 'http://127.0.0.1:1/'}",
        ),
        "target.command.http",
        7,
        ["missing required key 'http'"],
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "line", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_mistake_is_reported_precisely(text: str, path: str, line: int, words: list[str]) -> None:
    error = problems(text)
    matching = [p for p in error.problems if p.path and p.format().split(": ")[1] == path]
    if path == "(top level)":
        matching = error.problems
    assert matching, f"no problem at {path!r} in:\n{error.format()}"
    problem = matching[0]
    assert problem.file == "exp.yaml"
    assert problem.line == line, error.format()
    assert problem.column is not None and problem.column >= 1
    text_out = error.format()
    for word in words:
        assert word in text_out, f"{word!r} not in:\n{text_out}"
    assert "Traceback" not in text_out


def test_several_mistakes_are_all_reported_in_file_order() -> None:
    text = """\
        version: 1
        target: {python: experiment_targets:echo}
        load: {requests: many, concurrency: -1, timeuot: 3s}
        faults:
          - {kind: outgae}
          - {kind: latency, delay: soon}
        hypothesis:
          - {check: latency, max: 1s, percentile: 200}
        """
    error = problems(text)
    lines = error.format().splitlines()
    assert len(lines) >= 6, error.format()
    assert [p.line for p in sorted(error.problems, key=lambda p: p.line or 0)] == sorted(
        p.line for p in error.problems
    )
    joined = error.format()
    for fragment in (
        "load.requests",
        "load.concurrency",
        "load.timeuot",
        "did you mean 'timeout'",
        "faults[0].kind",
        "faults[1].delay",
        "hypothesis[0].percentile",
    ):
        assert fragment in joined


def test_x_keys_hold_anchors() -> None:
    text = "x-size: &size {requests: 2, concurrency: 2}\n" + edit(
        "  requests: 4\n  concurrency: 2\n", "  <<: *size\n  timeout: 5s\n"
    )
    experiment = parse_experiment(text, base_dir=TESTS)
    assert experiment.load.requests == 2 and experiment.load.timeout == 5


def test_missing_file_and_directory() -> None:
    with pytest.raises(ExperimentError, match="does not exist"):
        load_experiment(TESTS / "no-such-experiment.yaml")
    with pytest.raises(ExperimentError, match="is a directory"):
        load_experiment(TESTS)


def test_prompts_file_with_a_bad_line(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('"fine"\n{not json}\n')
    text = edit("concurrency: 2", "concurrency: 2\n  prompts_file: p.jsonl")
    error = problems(text, base_dir=tmp_path)
    assert "p.jsonl line 2: not JSON" in error.format()


def test_prompts_from_csv_and_records(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("topic,prompt\nbilling,Why two charges?\nbugs,It crashed\n")
    text = edit("concurrency: 2", "concurrency: 2\n  prompts_file: p.csv\n  messy: [empty]")
    experiment = parse_experiment(text, base_dir=tmp_path)
    texts = [p.text for p in experiment.prompts]
    assert texts[:2] == ["Why two charges?", "It crashed"]
    assert experiment.prompts[0].as_record() == {"prompt": "Why two charges?", "topic": "billing"}
    assert "" in texts[2:]  # messy: empty inputs added after the file's prompts


def test_cli_validate_reports_and_exits_2(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit("kind: outage", "kind: outtage"))
    good = EXAMPLES / "outage-fallback.yaml"
    done = cli("validate", str(good), str(bad))
    assert done.returncode == 2
    assert f"{bad}:13:11: faults[0].kind: unknown fault kind 'outtage'" in done.stderr
    assert "did you mean 'outage'" in done.stderr
    assert "outage-fallback.yaml: ok" in done.stdout
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_run_with_a_broken_file_runs_nothing(tmp_path: Path, cli: Cli) -> None:
    marker = tmp_path / "called"
    good = tmp_path / "good.yaml"
    good.write_text(edit("experiment_targets:echo", "experiment_targets:touch"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit("requests: 4", "requests: lots"))
    done = cli("run", str(good), str(bad), cwd=TESTS, env={"AICHAOS_TEST_MARKER": str(marker)})
    assert done.returncode == 2, done.stderr
    assert "load.requests" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


# --- random mutations of the examples -----------------------------------------------------

_JUNK: list[Any] = [
    None,
    -1,
    0,
    3.5,
    True,
    "",
    "zzz",
    "5 minutes",
    "20 per s",
    [],
    [1, "x"],
    {},
    {"x": 1},
    "*",
    "{{nope}}",
]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = copy.deepcopy(data)
    path = rng.choice(_paths(data))
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    action = rng.choice(("junk", "delete", "typo_key", "extra_key", "wrap"))
    if action == "delete":
        del parent[key]
    elif action == "typo_key" and isinstance(parent, dict) and isinstance(key, str) and key:
        value = parent.pop(key)
        i = rng.randrange(len(key))
        parent[key[:i] + key[i + 1 :] or "x"] = value
    elif action == "extra_key" and isinstance(parent, dict):
        parent[f"{key}x"] = rng.choice(_JUNK)
    elif action == "wrap":
        parent[key] = [parent[key]]
    else:
        parent[key] = rng.choice(_JUNK)
    return data


def _text_mutation(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    action = rng.choice(("drop", "dup", "indent", "chars"))
    if action == "drop":
        del lines[i]
    elif action == "dup":
        lines.insert(i, lines[i])
    elif action == "indent":
        lines[i] = " " * rng.choice((1, 3, 5)) + lines[i]
    else:
        line = lines[i]
        j = rng.randrange(len(line) + 1)
        lines[i] = line[:j] + rng.choice(":{}[]-#'\"&*!|>%@`") + line[j:]
    return "\n".join(lines) + "\n"


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_random_mutations_never_crash(example: Path) -> None:
    rng = random.Random(f"mutations:{example.name}")
    text = example.read_text()
    data = yaml.safe_load(text)
    errors = 0
    for n in range(40):
        if n % 2:
            mutated = _text_mutation(text, rng)
        else:
            mutated = yaml.safe_dump(_mutate(data, rng), sort_keys=False)
        try:
            parse_experiment(mutated, file="m.yaml", base_dir=EXAMPLES)
        except ExperimentError as exc:
            errors += 1
            for problem in exc.problems:
                assert problem.file == "m.yaml"
                assert problem.line is not None and problem.line >= 1, exc.format()
                assert problem.message
            assert "Traceback" not in exc.format()
    assert errors >= 15  # the mutations did break files
