"""Tying upstream attempts to target calls: exact (trace context, call header), inferred, and
the checks that cannot be decided (INCONCLUSIVE, exit 1)."""

from __future__ import annotations

import functools
import json
import os
import signal
import textwrap
import xml.etree.ElementTree as ET
from io import StringIO
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from rich.console import Console

from aichaos.experiment import Observer, parse_experiment, run_experiment
from aichaos.experiment.attribution import (
    RequestNotes,
    attribute,
    incomplete_options,
    new_traceparent,
    served_options,
    trace_id_of,
)
from aichaos.experiment.checks.base import CheckContext, bounded
from aichaos.experiment.checks.kinds.attribution import Attempts, IncompleteAnswers, ServedBy
from aichaos.experiment.metrics import phase_metrics
from aichaos.experiment.results import CallRecord
from aichaos.experiment.run_result import RunResult
from aichaos.experiment.stopping import StopMonitor
from aichaos.records import Attempt
from aichaos.report.console import print_verdict
from aichaos.report.html import render_html
from aichaos.report.journal import call_dict, journal_dict
from aichaos.report.junit import junit_xml
from aichaos.report.markdown import render_markdown
from aichaos.report.summary import phase_rows
from aichaos.wire.exchange import RequestInfo
from servers import read_body, serve

TESTS = Path(__file__).parent
EXAMPLES = TESTS.parent / "experiments"


def run_yaml(text: str, base_dir: Path = TESTS, seed: int = 1) -> RunResult:
    experiment = parse_experiment(textwrap.dedent(text), base_dir=base_dir)
    return anyio.run(functools.partial(run_experiment, experiment, seed))


def attempt(
    backend: str = "openai",
    started: float = 0.0,
    duration: float | None = 0.01,
    status: int = 200,
    error: str | None = None,
    call_id: str | None = None,
) -> Attempt:
    return Attempt(
        backend=backend,
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        model="m",
        stream=False,
        call_id=call_id,
        status=status,
        error=error,
        started=started,
        duration=duration,
        outcome="complete" if error is None else "connection_dropped",
    )


def call(id: str, started: float, ended: float, prompt: str = "p", ok: bool = True) -> CallRecord:
    return CallRecord(id, "inject", 0, prompt, started, ended=ended, ok=ok)


def request(body: bytes, traceparent: str | None = None) -> RequestInfo:
    headers = {"traceparent": traceparent} if traceparent else {}
    return RequestInfo("POST", "http://x/v1", "x", "/v1", "", headers, body)


# --- the parts -------------------------------------------------------------------------------


def test_traceparent_is_fresh_and_read_back() -> None:
    first, trace = new_traceparent()
    second, other = new_traceparent()
    assert first != second and trace != other
    version, trace_id, span, flags = first.split("-")
    assert (version, len(trace_id), len(span), flags) == ("00", 32, 16, "01")
    assert trace_id_of(first) == trace == trace_id
    assert trace_id_of("00-" + "A" * 32 + "-" + "b" * 16 + "-01") == "a" * 32  # case-insensitive
    assert trace_id_of("garbage") is None and trace_id_of(None) is None


def test_notes_find_prompts_as_json_escapes_them() -> None:
    notes = RequestNotes(['Say "hi"', "Grüße", "other"])
    quoted, umlaut = attempt(), attempt()
    notes(request(json.dumps({"content": 'Say "hi"'}).encode()), quoted)
    notes(
        request(
            json.dumps({"content": "Grüße"}).encode(), "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
        ),
        umlaut,
    )
    assert notes.get(quoted) is not None and notes.get(quoted).prompts == {'Say "hi"'}  # type: ignore[union-attr]
    note = notes.get(umlaut)
    assert note is not None and note.prompts == {"Grüße"} and note.trace_id == "c" * 32


def test_exact_ties_then_inference_by_prompt_and_time() -> None:
    a, b, c = call("a", 0.0, 1.0, "alpha"), call("b", 0.5, 2.0, "beta"), call("c", 0.6, 2.0, "beta")
    b.trace_id = "f" * 32
    notes = RequestNotes(["alpha", "beta"])
    traced, by_prompt, shared, early, named = (
        attempt(started=0.7),
        attempt(started=0.8),
        attempt(started=0.9),
        attempt(started=0.1),
        attempt(started=0.9, call_id="c"),
    )
    notes(request(b"{}", f"00-{'f' * 32}-{'1' * 16}-01"), traced)
    notes(request(b'{"q": "alpha"}'), by_prompt)  # a is the only call with that prompt
    notes(request(b'{"q": "beta"}'), shared)  # b or c
    notes(request(b'{"q": "zeta"}'), early)  # only a was in flight at 0.1
    tally = attribute([a, b, c], [traced, by_prompt, shared, early, named], 0.0, notes)
    assert tally.to_dict() == {
        "exact": 2,
        "inferred": 2,
        "ambiguous": 1,
        "outside": 0,
        "startup": 0,
    }
    assert a.attempts == [early, by_prompt] and b.attempts == [traced] and c.attempts == [named]
    assert b.possible == [shared] and c.possible == [shared] and not a.possible
    assert attribute([a], [attempt(started=5.0)], 0.0).outside == 1


def test_attempts_before_the_first_call_are_start_up_traffic() -> None:
    a = call("a", 1.0, 2.0)
    models, late = attempt(started=0.2), attempt(started=3.0)
    tally = attribute([a], [models, late], 0.0, first_call=1.0)
    assert (tally.startup, tally.outside) == (1, 1)
    assert attribute([], [attempt(started=0.1)], 0.0, first_call=float("inf")).startup == 1


def test_bounds_decide_what_every_way_of_tying_agrees_on() -> None:
    one, two = call("1", 0, 1), call("2", 0, 1)
    claude = attempt("claude", started=0.5)
    failed = attempt("openai", started=0.1, status=503)
    one.possible = two.possible = [failed, claude]
    # Either call could own the Claude answer; each succeeded, so each had one: Claude's.
    assert served_options(one) == {"claude"}
    dropped = attempt("claude", started=0.6, error="connection_dropped")
    two.attempts, two.possible = [claude], [dropped]
    assert incomplete_options(two) == {False, True}
    check = ServedBy(check="served_by", backend="claude", min_share=0.9)
    assert check.evaluate(CheckContext([one, two])).verdict == "PASS"
    unsure = Attempts(check="attempts", max=1).evaluate(CheckContext([one, two]))
    assert unsure.verdict == "INCONCLUSIVE" and not unsure.passed
    assert "traceparent" in unsure.detail and "concurrency 1" in unsure.detail
    cut = IncompleteAnswers(check="incomplete_answers").evaluate(CheckContext([two]))
    assert cut.verdict == "INCONCLUSIVE"
    assert bounded(0.2, 0.4, None, 0.5, "").passed
    assert not bounded(0.6, 0.8, None, 0.5, "").passed
    assert bounded(0.4, 0.6, None, 0.5, "").inconclusive
    assert bounded(0.0, 1.0, 0.3, 0.6, "").inconclusive  # the value may be inside or not


def test_the_journal_says_who_served_a_call_as_the_checks_count_it() -> None:
    decided, undecided = call("1", 0, 1), call("2", 0, 1)
    decided.possible = [attempt("claude", started=0.5)]  # its only possible answer
    undecided.possible = [attempt("openai", started=0.2), attempt("claude", started=0.5)]
    undecided.attempts = [attempt("openai", started=0.1)]  # a later answer may be Claude's
    assert call_dict(decided, 0.0)["served_by"] == "claude"
    entry = call_dict(undecided, 0.0)
    assert (entry["served_by"], entry["served_by_candidates"]) == ("unknown", ["claude", "openai"])
    assert phase_metrics([decided, undecided])["served_by"] == {"claude": 1, "unknown": 1}
    check = ServedBy(check="served_by", backend="claude", min_share=1.0)
    assert check.evaluate(CheckContext([decided, undecided])).verdict == "INCONCLUSIVE"
    failed = call("3", 0, 1, ok=False)
    assert "served_by_candidates" not in call_dict(failed, 0.0)
    assert call_dict(failed, 0.0)["served_by"] is None


def test_incomplete_answers_judges_the_last_answer_of_successful_calls() -> None:
    cut = call("cut", 0, 1)
    cut.attempts = [attempt(started=0.1, error="connection_dropped")]
    retried = call("retried", 0, 1)
    retried.attempts = [attempt(started=0.1, error="connection_dropped"), attempt(started=0.2)]
    failed = call("failed", 0, 1, ok=False)
    failed.attempts = [attempt(started=0.1, error="connection_dropped")]
    check = IncompleteAnswers(check="incomplete_answers", max=0.4)
    result = check.evaluate(CheckContext([cut, retried, failed]))
    assert result.verdict == "FAIL" and result.value == 0.5
    assert result.detail.startswith("1 of 2 successful calls got an incomplete last answer")
    assert check.evaluate(CheckContext([retried, failed])).verdict == "PASS"


def test_stop_when_window_covers_only_the_phase_it_watches() -> None:
    check = ServedBy(check="served_by", backend="openai", min_share=1.0, min_calls=3)
    monitor = StopMonitor([check])
    for i in range(5):  # baseline calls that failed just before inject started
        monitor.feed(CallRecord(f"b{i}", "baseline", i, "p", 0.0, ended=0.1, ok=False))
    monitor.phase = "inject"
    assert monitor.fired(0.2) is None  # no inject calls yet: nothing judged
    for i in range(3):
        monitor.feed(CallRecord(f"i{i}", "inject", i, "p", 0.1, ended=0.15, ok=False))
    assert monitor.fired(0.2) is not None


# --- runs ------------------------------------------------------------------------------------


async def _chat_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that calls its model once per request through `base` and forwards nothing."""
    if scope["type"] != "http":
        return
    request = json.loads(await read_body(receive))
    await anyio.sleep(0.05)  # the calls overlap
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{request['base']}/v1/chat/completions",
            headers={"authorization": "Bearer sk-test"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": request["q"]}]},
        )
    await send({"type": "http.response.start", "status": reply.status_code, "headers": []})
    await send({"type": "http.response.body", "body": reply.content})


def test_a_check_attribution_cannot_decide_is_inconclusive_and_does_not_pass() -> None:
    with serve(_chat_app) as url:
        result = run_yaml(
            f"""
            version: 1
            backends: {{openai: openai}}
            target:
              http:
                url: {url}/chat
                json: {{q: "{{{{prompt}}}}", base: "{{{{backends.openai.url}}}}"}}
            load: {{requests: 6, concurrency: 3}}
            phases: {{baseline: false, recovery: false}}
            hypothesis:
              - {{check: success_rate, min: 1}}
              - {{check: attempts, max: 1}}
            """
        )
    success, attempts = result.checks
    assert success.verdict == "PASS"
    assert attempts.verdict == "INCONCLUSIVE" and attempts.value is None
    assert result.status == "failed" and result.exit_code == 1
    assert result.attribution["exact"] == 0 and result.attribution["ambiguous"] > 0
    metrics = result.phases[0].metrics
    assert metrics["attempts"]["total"] == 6 and metrics["attempts"]["max"] is None
    assert metrics["served_by"] == {"openai": 6}  # only openai answered: decided anyway
    # Every report says INCONCLUSIVE, and why.
    journal = journal_dict(result)
    assert [c["result"] for c in journal["checks"]] == ["PASS", "INCONCLUSIVE"]
    assert journal["attribution"] == result.attribution
    assert "❔ INCONCLUSIVE | attempts" in render_markdown(journal)
    assert "<td class='unsure'>INCONCLUSIVE</td>" in render_html(journal)
    failure = ET.fromstring(junit_xml(result)).find(".//failure")
    assert failure is not None and failure.get("message", "").startswith("INCONCLUSIVE")
    out = StringIO()
    print_verdict(result, Console(file=out, width=400))
    text = out.getvalue()
    assert "INCONCLUSIVE" in text and "0 of 2 checks failed, 1 inconclusive" in text
    assert "forward each request's `traceparent`" in text


COMMAND = """
version: 1
backends: {{openai: {{provider: openai}}, claude: {{provider: anthropic}}}}
target:
  command:
    run: "{{{{python}}}} {app} --port {{{{port}}}} {flags}"
    ready: "http://127.0.0.1:{{{{port}}}}/health"
    http: {{url: "http://127.0.0.1:{{{{port}}}}/chat", json: {{question: "{{{{prompt}}}}"}}}}
load:
  requests: 12
  concurrency: 4
  prompts: ["What are your opening hours?", "How do I reset my password?"]
phases: {{baseline: {{requests: 4}}, recovery: false}}
faults: [{{backend: openai, kind: outage}}]
hypothesis:
  - {{check: success_rate, min: 0.99, phase: inject}}
  - {{check: served_by, backend: claude, min_share: 0.9, phase: inject}}
"""


@pytest.mark.parametrize(
    "flags",
    ["", "--forward traceparent", "--forward x-aichaos-call", "--no-fallback"],
    ids=["forwards-nothing", "traceparent", "x-aichaos-call", "no-fallback"],
)
def test_a_command_app_falling_back_is_judged_unchanged(flags: str) -> None:
    app = EXAMPLES / "apps" / "chat_server.py"
    result = run_yaml(COMMAND.format(app=app, flags=flags))
    tally = result.attribution
    inject = next(p for p in result.phases if p.name == "inject").metrics
    total = sum(len(c.attempts) for c in result.calls) + tally["ambiguous"]
    assert tally["outside"] == 0 and tally["startup"] == 0
    if flags == "--no-fallback":
        assert result.exit_code == 1
        assert [c.verdict for c in result.checks] == ["FAIL", "FAIL"]
        assert "nobody (failed) 12" in result.checks[1].detail
        return
    assert result.exit_code == 0, [(c.name, c.verdict, c.detail) for c in result.checks]
    assert inject["served_by"] == {"claude": 12}
    assert inject["faults"] == {"outage": inject["attempts"]["total"] - 12}
    assert all(c.served_by in (None, "claude") for c in result.calls if c.phase == "inject")
    if flags.startswith("--forward"):
        assert tally == {"exact": total, "inferred": 0, "ambiguous": 0, "outside": 0, "startup": 0}
        assert all(len(c.attempts) == 2 for c in result.calls if c.phase == "inject")
    else:
        assert tally["exact"] == 0 and tally["inferred"] + tally["ambiguous"] > 0


class _InterruptAfterTwo(Observer):
    """Sends the run a SIGINT once two calls have finished (slow calls are then in flight)."""

    def __init__(self) -> None:
        self.finished = 0

    def call_finished(self, call: CallRecord) -> None:
        self.finished += 1
        if self.finished == 2:
            os.kill(os.getpid(), signal.SIGINT)


def test_calls_cancelled_in_flight_are_counted_once_and_judged_by_no_check() -> None:
    experiment = parse_experiment(
        textwrap.dedent(
            """
            version: 1
            target: {python: "experiment_targets:async_sleepy"}
            load: {requests: 8, concurrency: 2, prompts: ["0.01", "30"]}
            phases: {baseline: false}
            hypothesis: [{check: success_rate, min: 1}]
            """
        ),
        base_dir=TESTS,
    )
    job = functools.partial(
        run_experiment, experiment, 1, _InterruptAfterTwo(), handle_signals=True
    )
    result = anyio.run(job)
    assert result.status == "interrupted"
    cancelled = [c for c in result.calls if c.cancelled]
    assert cancelled and all(c.error == "cancelled" and not c.ok for c in cancelled)
    assert all(c.ended is not None for c in result.calls)
    metrics = result.phases[0].metrics
    assert metrics["requests"] == 2 and metrics["cancelled"] == len(cancelled)
    assert metrics["requests"] + metrics["cancelled"] == len(result.calls)
    (check,) = result.checks
    assert check.verdict == "PASS" and check.detail.startswith("2 of 2 calls succeeded")
    assert f"{len(cancelled)} calls cancelled in flight by the run are not judged" in check.detail
    out = StringIO()
    print_verdict(result, Console(file=out, width=400))
    assert f"{len(result.calls)} ({len(cancelled)} cancelled) calls" in out.getvalue()
    # the phase's line and row count the same calls as the footer
    (row,) = phase_rows(journal_dict(result))
    assert row.calls == f"{len(result.calls)} ({len(cancelled)} cancelled)"
