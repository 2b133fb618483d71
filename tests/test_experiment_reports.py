"""The journal, JUnit XML and console output; API keys never appear in any of them."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from aichaos.experiment import parse_experiment, run_experiment
from aichaos.experiment.run_result import RunResult
from aichaos.report.console import PlainConsole, print_verdict
from aichaos.report.journal import journal_dict, read_journal, write_journal
from aichaos.report.junit import write_junit
from aichaos.report.redact import REDACTED, Redactor
from aichaos.secret_shapes import scrub
from conftest import Cli
from experiment_targets import PLANTED_AZURE_KEY, PLANTED_URL_PASSWORD

TESTS = Path(__file__).parent
ROOT = TESTS.parent

EXPERIMENT = """\
version: 1
title: journal test
seed: 42
backends: {openai: openai, claude: anthropic}
target: {python: "experiment_targets:ask"}
load: {requests: 4, concurrency: 1}
phases: {baseline: {requests: 2}, recovery: {requests: 2}}
faults: [{backend: openai, kind: outage, window: {start: 0s, duration: 5s}}]
hypothesis:
  - {check: success_rate, min: 0.5}
  - {check: served_by, backend: openai, min_share: 1, phase: inject}
"""


def run_text(text: str, observer: PlainConsole | None = None) -> RunResult:
    experiment = parse_experiment(text, base_dir=TESTS)
    return anyio.run(functools.partial(run_experiment, experiment, None, observer))


def test_journal_records_the_run(tmp_path: Path) -> None:
    result = run_text(EXPERIMENT)
    path = write_journal(result, tmp_path / "out" / "journal.json")
    journal = read_journal(path)
    assert journal["status"] == "failed" and journal["exit_code"] == 1
    assert journal["seed"] == 42
    assert journal["experiment"]["title"] == "journal test"
    spec = journal["experiment"]["spec"]
    assert spec["faults"][0]["kind"] == "outage" and spec["faults"][0]["window"]["duration"] == "5s"
    assert journal["versions"]["aichaos"] and journal["versions"]["python"]
    assert [p["name"] for p in journal["phases"]] == ["baseline", "inject", "recovery"]
    inject = journal["phases"][1]
    assert inject["metrics"]["requests"] == 4 and inject["metrics"]["faults"] == {"outage": 4}
    assert [c["check"] for c in journal["checks"]] == ["success_rate", "served_by"]
    assert [c["passed"] for c in journal["checks"]] == [True, False]
    calls = journal["calls"]
    assert len(calls) == 8
    failed = [c for c in calls if not c["ok"]]
    assert len(failed) == 4 and all(c["phase"] == "inject" for c in failed)
    attempt = failed[0]["attempts"][0]
    assert attempt["faults"] == ["outage"] and attempt["status"] == 500
    assert attempt["backend"] == "openai" and attempt["call_id"] == failed[0]["id"]
    assert 0 <= attempt["started"] < journal["timings"]["duration"]
    assert journal["timings"]["fault_end"] is not None
    assert journal["events"] and journal["faults"][0]["injected"] == 4


def test_junit_has_a_case_per_check(tmp_path: Path) -> None:
    result = run_text(EXPERIMENT)
    path = write_junit([result, result], tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "2"
    suite = root[0]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "success_rate >= 0.5",
        "served_by openai >= 1 (inject)",
    ]
    failure = cases[1].find("failure")
    assert failure is not None and "measured 0" in failure.get("message", "")
    assert "served: nobody" in (failure.text or "")
    assert cases[0].find("failure") is None


def test_aborted_runs_get_an_error_case(tmp_path: Path) -> None:
    text = EXPERIMENT.replace(
        "hypothesis:",
        "stop_when: [{check: success_rate, min: 0.9, window: 2s, min_calls: 2}]\nhypothesis:",
    ).replace("requests: 4, concurrency: 1", "duration: 5s, concurrency: 1")
    result = run_text(text)
    assert result.status == "aborted"
    suite = ET.parse(write_junit(result, tmp_path / "j.xml")).getroot()[0]
    errors = [c for c in suite.findall("testcase") if c.find("error") is not None]
    assert len(errors) == 1 and errors[0].get("name") == "run"
    assert "stop_when" in errors[0].find("error").get("message", "")  # type: ignore[union-attr]


def test_plain_console_lines_and_verdict() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    result = run_text(EXPERIMENT, PlainConsole(console))
    text = out.getvalue()
    assert "journal test" in text and "seed 42" in text
    assert "phase inject: 4 requests, closed loop, concurrency 1, faults on" in text
    assert "done inject: 4 calls, 0 ok (0%)" in text and "faults: outage 4" in text
    assert "served_by" in text and "FAIL" in text and "PASS" in text
    assert "FAILED 1 of 2 checks failed" in text
    out2 = io.StringIO()
    print_verdict(result, Console(file=out2, width=120))
    assert "FAILED" in out2.getvalue()


def test_phase_line_and_timeline_print_one_share() -> None:
    # 7 of 13 is 53.8%: the live line once printed 54% where the timeline printed 53.8%
    from aichaos.experiment.phases import PhasePlan
    from aichaos.report.console import LiveConsole, PhaseStats
    from aichaos.report.summary import share

    stats = PhaseStats(PhasePlan("inject", requests=13, duration=None, concurrency=1, rate=None))
    stats.settle({"requests": 13, "ok": 7})
    assert "13 calls, 7 ok (53.8%)" in stats.line()
    assert share(7 / 13) == "53.8%"
    row = LiveConsole._row(stats)  # the live table's cell
    assert row[3].plain == "53.8%"  # type: ignore[union-attr]


def test_redactor_scrubs_keys_by_name_value_and_shape() -> None:
    redactor = Redactor(["my-very-secret-value"])
    data = {
        "headers": {"Authorization": "Bearer abc.def.ghi", "x-trace": "ok"},
        "env": {"OPENAI_API_KEY": "whatever", "max_tokens": 5},
        "note": "key sk-proj-0123456789abcdef and my-very-secret-value here",
    }
    clean = redactor.data(data)
    assert clean["headers"] == {"Authorization": REDACTED, "x-trace": "ok"}
    assert clean["env"] == {"OPENAI_API_KEY": REDACTED, "max_tokens": 5}
    assert "sk-proj" not in clean["note"] and "my-very-secret-value" not in clean["note"]
    assert redactor.text("Bearer eyJhbGciOi.abc") == REDACTED


AZURE_84 = "7Jk2mN9pQ4rS6tV8wX1yZ3aB5cD7eF9gH2iJ4kL6mN8oP0qR2sT4JQQJ99BDACYeBjFXJ3w3AAAYACOGx1y2"


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"azure key {AZURE_84} in a prompt", AZURE_84),
        ("export MISTRAL_API_KEY=Xk2mN9pQ4rS6tV8wX1yZ3aB5", "Xk2mN9pQ4rS6tV8wX1yZ3aB5"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "wJalrXUtnFEMI/K7MDENG"),
        ('{"client_secret": "c1i3nt-s3cr3t-value"}', "c1i3nt-s3cr3t-value"),
        ("AZURE_OPENAI_API_KEY: q8w7e6r5t4y3", "q8w7e6r5t4y3"),
    ],
)
def test_key_shapes_and_prefixed_labels_are_scrubbed(text: str, secret: str) -> None:
    """Keys with no `sk-` style prefix are caught by their label, also when the label has
    a prefix (env-variable names), or by Azure's 84-character shape."""
    assert secret not in scrub(text) and REDACTED in scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 500",
        "the secret is out",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "x-ratelimit-remaining-tokens: 100",
    ],
)
def test_ordinary_text_is_not_scrubbed(text: str) -> None:
    assert scrub(text) == text


CHAT_SERVER = ROOT / "experiments" / "apps" / "chat_server.py"
PLANTED_ENV = "sk-planted-env-7d2f9c1e5b3a4d6f8e0a"
PLANTED_YAML = "sk-ant-planted-yaml-1a2b3c4d5e6f7a8b"
PLANTED_HEADER = "planted-header-token-Zq9Xw8Vu7"
PLANTED_UPSTREAM_PASSWORD = "planted-upstream-pass-Kd8"


def test_planted_keys_never_appear_in_any_output(tmp_path: Path, cli: Cli) -> None:
    command = tmp_path / "command.yaml"
    command.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            title: secrets through a command target
            description: "debug note: the key is {PLANTED_YAML}, azure {PLANTED_AZURE_KEY}"
            backends: {{openai: openai, claude: anthropic}}
            target:
              command:
                run: "{{{{python}}}} {CHAT_SERVER} --port {{{{port}}}} --forward traceparent"
                ready: "http://127.0.0.1:{{{{port}}}}/health"
                env: {{ANTHROPIC_API_KEY: "{PLANTED_YAML}"}}
                http:
                  url: "http://127.0.0.1:{{{{port}}}}/chat"
                  headers: {{Authorization: "Bearer {PLANTED_HEADER}"}}
                  json: {{question: "{{{{prompt}}}}"}}
            load: {{requests: 4, concurrency: 2}}
            phases: {{baseline: {{requests: 2}}, recovery: false}}
            faults: [{{backend: openai, kind: auth_error}}]
            hypothesis: [{{check: success_rate, min: 1}}]
            """
        )
    )
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(
        textwrap.dedent(
            """\
            version: 1
            target: {python: "experiment_targets:leaky"}
            load: {requests: 2}
            phases: {baseline: false, recovery: false}
            hypothesis: [{check: success_rate, min: 1}]
            """
        )
    )
    outputs = []
    upstream = tmp_path / "upstream.yaml"  # refused, without repeating the password
    upstream.write_text(
        command.read_text().replace(
            "backends: {openai: openai, claude: anthropic}",
            "backends: {openai: {provider: openai, upstream: 'https://bob:"
            + PLANTED_UPSTREAM_PASSWORD
            + "@gateway.example/v1'}, claude: anthropic}",
        )
    )
    for argv in (["validate", str(upstream)], ["run", "--dry-run", str(upstream)]):
        refused = cli(*argv)
        assert refused.returncode == 2 and "carries credentials" in refused.stderr + refused.stdout
        outputs += [refused.stdout, refused.stderr]
    run = [
        "run",
        str(command),
        str(leaky),
        "--journal",
        str(tmp_path / "journal.json"),
        "--junit",
        str(tmp_path / "junit.xml"),
        "--html",
        str(tmp_path / "report.html"),
        "--markdown",
        str(tmp_path / "report.md"),
    ]
    # The run itself as a user runs it: everything the process prints, logs included.
    done = subprocess.run(
        [sys.executable, "-m", "aichaos", *run],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: a loaded machine is slow
        cwd=ROOT / "experiments",
        env={**os.environ, "OPENAI_API_KEY": PLANTED_ENV, "PYTHONPATH": str(TESTS)},
    )
    outputs += [done.stdout, done.stderr]
    assert done.returncode == 1, done.stdout + done.stderr
    planned = cli(*run, "--dry-run", cwd=ROOT / "experiments", env={"OPENAI_API_KEY": PLANTED_ENV})
    assert planned.returncode == 0, planned.stdout + planned.stderr
    outputs += [planned.stdout, planned.stderr]
    written = [*sorted(tmp_path.glob("journal.*.json")), tmp_path / "junit.xml"]
    assert [p.name for p in written] == ["journal.command.json", "journal.leaky.json", "junit.xml"]
    written += [*tmp_path.glob("report*.html"), *tmp_path.glob("report*.md")]
    assert len(written) == 7
    outputs += [p.read_text() for p in written]
    everything = "\n".join(outputs)
    for secret in (
        PLANTED_ENV,
        PLANTED_YAML,
        PLANTED_HEADER,
        PLANTED_AZURE_KEY,
        PLANTED_URL_PASSWORD,
        PLANTED_UPSTREAM_PASSWORD,
    ):
        assert secret not in everything
    assert REDACTED in everything
    # The keys did travel where they belong: the leaky target's error carried one.
    leaky_journal = json.loads((tmp_path / "journal.leaky.json").read_text())
    assert REDACTED in leaky_journal["calls"][0]["message"]
    command_journal = json.loads((tmp_path / "journal.command.json").read_text())
    assert command_journal["status"] == "passed"
    assert any(
        a["faults"] == ["auth_error"] for c in command_journal["calls"] for a in c["attempts"]
    )


def test_journal_dict_scrubs_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-0123456789-planted")
    result = run_text(EXPERIMENT.replace("title: journal test", "title: tok-0123456789-planted"))
    assert "tok-0123456789-planted" not in json.dumps(journal_dict(result))


@pytest.mark.parametrize(
    "secret",
    [
        "0123456789abcdef0123456789ABCDEF",  # Azure OpenAI key
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "hf_abcdefghijklmnopqrstuvwxyzABCD",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-123456789012-abcdefghij",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
        "gsk_abcdefghijklmnopqrstuvwxyz01",
    ],
)
def test_key_shapes_are_redacted_in_prompts_and_echoed_errors(secret: str) -> None:
    redactor = Redactor()
    for text in (f"my key is {secret}, thanks", f'{{"error": "invalid key \\"{secret}\\""}}'):
        assert secret not in redactor.text(text) and REDACTED in redactor.text(text)


def test_labelled_secrets_and_url_credentials_are_redacted() -> None:
    redactor = Redactor()
    text = "GET https://svc:pa55word@gw.example/v1?key=abcd1234efgh&alt=sse api-key: q1w2e3r4"
    clean = redactor.text(text)
    assert "pa55word" not in clean and "abcd1234efgh" not in clean and "q1w2e3r4" not in clean
    assert "gw.example/v1" in clean and "alt=sse" in clean


def test_identifiers_shaped_like_keys_are_kept() -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    redactor = Redactor()
    assert redactor.data({"trace_id": trace_id}) == {"trace_id": trace_id}
    traceparent = f"00-{trace_id}-b7ad6b7169203331-01"
    assert redactor.text(f"traceparent: {traceparent}") == f"traceparent: {traceparent}"
    for text in ("req_" + trace_id, "x" * 32, "1" * 32, "alice@example.com", "sha " + "ab" * 20):
        assert redactor.text(text) == text


def test_upstream_credentials_are_refused_without_repeating_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aichaos.cli import main

    for upstream in ("openai=https://bob:s3cr3t-pw@gw.example", "x=openai@http://bob:s3cr3t-pw@h"):
        assert main(["proxy", "--upstream", upstream]) == 2
        err = capsys.readouterr().err
        assert "carries credentials" in err and "s3cr3t-pw" not in err
