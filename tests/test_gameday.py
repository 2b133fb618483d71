"""Game days (issue 11): a router-like app configured by a rendered file, its start-up
traffic, two backends of one provider behind a command target."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path

import anyio

from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.run_result import RunResult
from aichaos.report.journal import journal_dict

TESTS = Path(__file__).parent

ROUTER = """
version: 1
backends:
  primary: {provider: openai}
  secondary: {provider: openai}
target:
  command:
    run: "{{python}} ../router_app.py --config {{files.config}} --port {{port}}"
    files: {config: router.json}
    ready: "http://127.0.0.1:{{port}}/health"
    http: {url: "http://127.0.0.1:{{port}}/chat", json: {prompt: "{{prompt}}"}, output: answer}
load: {requests: 6, concurrency: 1, prompts: ["hi"]}
"""


def run_yaml(text: str, seed: int = 1) -> RunResult:
    experiment = parse_experiment(
        textwrap.dedent(text), base_dir=TESTS / "gameday", source=TESTS / "gameday" / "router.yaml"
    )
    return anyio.run(functools.partial(run_experiment, experiment, seed))


def test_a_router_configured_by_a_file_falls_back_and_its_start_up_is_apart() -> None:
    text = ROUTER + textwrap.dedent("""
        phases: {baseline: {requests: 2}, recovery: {requests: 2}}
        faults: [{backend: primary, kind: rate_limit, name: primary 429}]
        hypothesis:
          - {check: success_rate, min: 1.0}
          - {check: served_by, backend: secondary, min_share: 1.0, phase: inject}
          - {check: recovery_time, backend: primary, max: 1s}
    """)
    result = run_yaml(text)
    journal = journal_dict(result)
    verdicts = [(c.name, c.verdict) for c in result.checks]
    # The router benches a key for 30 s after a 429: the primary does not serve again.
    assert [v for _, v in verdicts] == ["PASS", "PASS", "FAIL"], verdicts
    assert "'primary' serving did not return" in result.checks[2].detail
    (models,) = journal["startup_attempts"]  # GET /v1/models before the first call
    assert (models["method"], models["path"], models["backend"]) == ("GET", "/v1/models", "primary")
    assert journal["unattributed_attempts"] == []
    assert result.attribution["startup"] == 1 and result.attribution["outside"] == 0
    inject = next(p for p in result.phases if p.name == "inject").metrics
    assert inject["faults"] == {"primary 429": 1}
    assert "sk-primary-0000" not in json.dumps(journal)


def test_a_three_stage_game_day_against_one_running_router_carries_its_state() -> None:
    # One app, started once: the cooldown the router starts in one stage is still on in the
    # next ones (three files, each restarting the app, would hide exactly that).
    text = ROUTER + textwrap.dedent("""
        phases: {baseline: {requests: 2}, recovery: false}
        stages:
          - name: primary-down
            faults: [{name: primary outage, backend: primary, kind: outage}]
            requests: 3
          - name: secondary-429
            faults: [{name: secondary 429, backend: secondary, kind: rate_limit, first: 1}]
            requests: 3
          - name: calm
            requests: 2
        hypothesis:
          - {check: served_by, backend: primary, min_share: 1.0, phase: baseline}
          - {check: served_by, backend: secondary, min_share: 1.0, stage: primary-down}
          - {check: status, forbidden: ["5xx"], stage: secondary-429}
          - {check: error_rate, max: 1.0, during: secondary 429}
          - {check: success_rate, min: 1.0, stage: calm}
    """)
    result = run_yaml(text)
    verdicts = [(c.phase, c.verdict) for c in result.checks]
    assert verdicts == [
        ("baseline", "PASS"),
        ("primary-down", "PASS"),
        ("secondary-429", "FAIL"),  # both keys benched: the router answers 502
        ("during secondary 429", "PASS"),
        ("calm", "FAIL"),  # no fault is on, and yet nothing succeeds: the cooldowns
    ], [(c.name, c.detail) for c in result.checks]
    calls = {p.name: [c for c in result.calls if c.phase == p.name] for p in result.phases}
    assert [p.name for p in result.phases] == ["baseline", "primary-down", "secondary-429", "calm"]
    # primary-down: the first call finds the primary down and benches it; the next skip it
    first, *rest = calls["primary-down"]
    assert [a.backend for a in first.attempts] == ["primary", "secondary"]
    assert all([a.backend for a in c.attempts] == ["secondary"] for c in rest)
    # the 429 storm hits once; from then on both keys are benched
    assert [[a.backend for a in c.attempts] for c in calls["secondary-429"]] == [
        ["secondary"],
        [],
        [],
    ]
    assert [(c.ok, c.status) for c in calls["calm"]] == [(False, 502), (False, 502)]
    assert all(not c.attempts for c in calls["calm"])  # the router does not even try
    calm = next(p for p in result.phases if p.name == "calm")
    assert calm.fault_windows == [] and calm.metrics["faults"] == {}
    journal = journal_dict(result)
    assert len(journal["startup_attempts"]) == 1  # GET /v1/models once: one app for all stages
