"""Streams that end early, with the real openai and anthropic SDKs, in-process, through the
proxy and from a command: each attempt says how its answer ended, only a complete answer
serves a call, and `incomplete_answers` fails the app that shows a cut answer."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import anyio
import pytest

from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.checks.base import CheckContext
from aichaos.experiment.checks.kinds.attribution import IncompleteAnswers
from aichaos.experiment.run_result import RunResult
from servers import serve

TESTS = Path(__file__).parent
OUTCOME = {
    "drop": "connection_dropped",
    "no_terminator": "stream_incomplete",
    "error_event": "stream_error_event",
}
PROMPTS = [
    f"{p} {s}: Tell me about tides." for p in ("openai", "anthropic") for s in ("naive", "careful")
]


def run(target: str, mode: str) -> RunResult:
    text = f"""
        version: 1
        backends: {{openai: openai, anthropic: anthropic}}
        target: {target}
        load: {{requests: 4, concurrency: 1, prompts: {PROMPTS!r}, timeout: 10s}}
        phases: {{baseline: false, recovery: false}}
        mock: {{latency: 0ms, ttft: 5ms, tokens_per_second: 2000}}
        faults:
          - {{backend: [openai, anthropic], kind: stream_cut, mode: {mode}, after: 2}}
        hypothesis: [{{check: incomplete_answers}}]
        """
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    return anyio.run(functools.partial(run_experiment, experiment, 3))


def judge(result: RunResult, mode: str) -> None:
    calls = {c.prompt.split(":")[0]: c for c in result.calls}
    assert all(c.ok for c in calls.values()), [
        (c.prompt, c.error, c.message) for c in calls.values()
    ]
    for provider in ("openai", "anthropic"):
        naive, careful = calls[f"{provider} naive"], calls[f"{provider} careful"]
        # The naive app showed a cut answer: one attempt, which did not end complete.
        assert [(a.backend, a.stream, a.outcome) for a in naive.attempts] == [
            (provider, True, OUTCOME[mode])
        ]
        assert naive.output and naive.served_by is None
        # The careful one noticed and asked again: the complete answer served it.
        assert [(a.stream, a.outcome) for a in careful.attempts] == [
            (True, OUTCOME[mode]),
            (False, "complete"),
        ]
        assert careful.served_by == provider
    verdict = result.checks[0]
    assert verdict.verdict == "FAIL" and verdict.value == 0.5 and result.exit_code == 1
    assert f"{OUTCOME[mode]} 2" in verdict.detail
    check = IncompleteAnswers(check="incomplete_answers")
    careful_calls = [c for c in result.calls if "careful" in c.prompt]
    assert check.evaluate(CheckContext(careful_calls)).verdict == "PASS"


@pytest.mark.parametrize("mode", OUTCOME)
def test_in_process(mode: str) -> None:
    judge(run('{python: "stream_apps:answer"}', mode), mode)


@pytest.mark.parametrize("mode", OUTCOME)
def test_through_the_proxy(mode: str) -> None:
    from stream_apps import asgi_app

    with serve(asgi_app) as url:
        target = (
            f'{{http: {{url: "{url}/", output: answer, json: {{q: "{{{{prompt}}}}",'
            ' openai: "{{backends.openai.url}}", anthropic: "{{backends.anthropic.url}}"}}}'
        )
        judge(run(target, mode), mode)


@pytest.mark.parametrize("mode", OUTCOME)
def test_from_a_command(mode: str) -> None:
    app = TESTS / "stream_apps.py"
    target = (
        f'{{command: {{run: "{{{{python}}}} {app} {{{{port}}}}",'
        ' ready: "http://127.0.0.1:{{port}}/",'
        ' http: {url: "http://127.0.0.1:{{port}}/", output: answer, json: {q: "{{prompt}}"}}}}'
    )
    judge(run(target, mode), mode)
