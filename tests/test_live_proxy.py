"""`aichaos run --proxy URL` (issue 11 item 2): a run that follows an already running proxy.

A real proxy (`serve_proxy_in_thread`, 127.0.0.1 port 0, admin token) and a real app
(`sse_relay_app.RelayApp` on uvicorn) whose model calls go through it. The app holds a
chosen request until the test's second actor has changed the proxy's faults, so the
change falls between two known calls without any sleep.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aichaos.experiment import ExperimentError, parse_experiment, run_experiment
from aichaos.experiment.run_result import RunResult
from aichaos.proxy.feed import Feed
from aichaos.proxy.server import RunningProxy, serve_proxy_in_thread
from aichaos.report.journal import journal_dict
from aichaos.report.summary import timeline_rows
from conftest import Cli
from proxy_helpers import make_session
from servers import serve
from sse_relay_app import RelayApp
from test_gameday import ROUTER

TESTS = Path(__file__).parent
TOKEN = "s3cret-admin-token"


@pytest.fixture
def proxy() -> Iterator[RunningProxy]:
    session = make_session({"openai": {"provider": "openai"}}, seed=2)
    with serve_proxy_in_thread(session, admin_token=TOKEN) as running:
        yield running


def experiment_text(app_url: str, body: str) -> str:
    return textwrap.dedent(f"""
        version: 1
        backends: {{openai: openai}}
        target:
          http:
            url: {app_url}/
            json:
              {{provider: openai, base: "{{{{backends.openai.url}}}}", prompt: "{{{{prompt}}}}"}}
            output: {{format: openai}}
        """) + textwrap.dedent(body)


def run(text: str, proxy_url: str, token: str | None = TOKEN) -> RunResult:
    experiment = parse_experiment(text, base_dir=TESTS)
    job = functools.partial(run_experiment, experiment, 4, proxy=proxy_url, admin_token=token)
    return anyio.run(job)


def admin(proxy: RunningProxy, method: str, path: str) -> Any:
    headers = {"authorization": f"Bearer {TOKEN}"}
    return httpx.request(method, f"{proxy.base_url}/_aichaos{path}", headers=headers).json()


def aichaos_fault(proxy: RunningProxy, *words: str) -> None:
    """The second actor: `aichaos fault ...` in a process of its own, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "aichaos", "fault", *words, "--admin", proxy.base_url],
        env={"AICHAOS_ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def test_live_faults_from_a_second_process_reach_the_run(proxy: RunningProxy) -> None:
    add, remove = threading.Event(), threading.Event()
    app = RelayApp({3: add, 6: remove}, forward=True)  # calls 3 and 6 wait for the operator

    def operator() -> None:
        wait(lambda: app.count >= 3)  # call 3 waits: calls 1 and 2 are done
        aichaos_fault(proxy, "add", "kind=outage", "backend=openai", "name=primary down")
        add.set()
        wait(lambda: app.count >= 6)
        admin(proxy, "POST", "/pause")  # the kill switch first, then the fault goes
        aichaos_fault(proxy, "remove", "f1")
        admin(proxy, "POST", "/resume")
        remove.set()

    helper = threading.Thread(target=operator, daemon=True)
    with serve(app) as url:
        helper.start()
        body = """
            phases: {baseline: false, recovery: false}
            load: {requests: 8, concurrency: 1, prompts: ["Why is the sky blue?"], timeout: 40s}
            hypothesis:
              - {check: success_rate, min: 1.0}
              - {check: recovery_time, max: 30s}
            """
        result = run(experiment_text(url, body), proxy.base_url)
        helper.join(60)
    oks = [c.ok for c in result.calls]
    assert oks == [True, True, False, False, False, True, True, True], [
        (c.error, c.message) for c in result.calls
    ]
    # every attempt the proxy carried is in the run, tied to its call by its traceparent
    assert result.attribution["exact"] == 8 and len(result.attempts) == 8
    for call in result.calls:
        (attempt,) = call.attempts
        assert attempt.faults == ([] if call.ok else ["primary down"])
        assert attempt.status == (200 if call.ok else 500)
    journal = journal_dict(result)
    changes = [e for e in journal["events"] if "fault_change" in e]
    actions = [e["fault_change"]["action"] for e in changes]
    assert actions == ["added", "paused", "removed", "resumed"]
    assert changes[0]["message"] == "proxy: fault f1 added: primary down on openai"
    assert all(e["fault_change"]["at"] == e["at"] for e in changes)  # the run's clock
    # the timeline shows the operator's fault where it was active: from its add to the pause
    (phase,) = journal["phases"]
    (window,) = phase["faults"]
    assert (window["label"], window["backend"], window["name"]) == (
        "f1 primary down (live)",
        "openai",
        None,
    )
    assert (window["start"], window["end"]) == (changes[0]["at"], changes[1]["at"])
    (row,) = timeline_rows(journal)
    assert row.faults.startswith("f1 primary down (live): outage on openai ")
    calls = result.calls
    assert calls[1].ended <= changes[0]["at"] <= calls[2].ended  # the proxy's clock agrees
    assert calls[4].ended <= changes[1]["at"] <= changes[3]["at"] <= calls[5].ended
    assert changes[1]["message"] == "proxy: injection paused (kill switch)"
    success, recovery = result.checks
    assert (success.verdict, success.value) == ("FAIL", 5 / 8)
    assert recovery.verdict == "PASS"  # faults ended with the kill switch
    assert result.fault_end == pytest.approx(changes[1]["at"], abs=1e-5)


def wait(condition: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the run did not get there in time"
        time.sleep(0.01)


RUN_FAULTS = """
    phases: {baseline: {requests: 1}, recovery: {requests: 1}}
    load: {requests: 2, concurrency: 1, prompts: ["Why is the sky blue?"], timeout: 40s}
    faults: [{backend: openai, kind: outage, name: run outage}]
    hypothesis: [{check: served_by, backend: openai, min_share: 1.0}]
    """


def test_the_runs_own_faults_are_applied_through_the_proxy_and_removed(
    proxy: RunningProxy,
) -> None:
    with serve(RelayApp()) as url:
        result = run(experiment_text(url, RUN_FAULTS), proxy.base_url)
    assert [(c.phase, c.ok) for c in result.calls] == [
        ("baseline", True),
        ("inject", False),
        ("inject", False),
        ("recovery", True),
    ]
    assert admin(proxy, "GET", "/faults")["faults"] == []  # removed at the end of inject
    changes = [e["message"] for e in result.events if "fault_change" in e]
    assert changes == [
        "proxy: fault f1 added: run outage on openai (this run)",
        "proxy: fault f1 removed: run outage (this run)",
    ]
    assert [f["label"] for f in result.faults] == ["run outage"]
    assert result.faults[0]["injected"] == 2
    # removed from the proxy at the end of inject, and the journal says so
    assert (result.faults[0]["state"], result.faults[0]["state_at_removal"]) == (
        "removed",
        "active",
    )
    assert result.checks[0].verdict == "FAIL"  # inferred: the relay forwards nothing
    assert result.attribution["inferred"] == 4


@pytest.mark.parametrize("how", ["stop_when", "ctrl-c"])
def test_a_run_that_stops_removes_its_faults_from_the_proxy(proxy: RunningProxy, how: str) -> None:
    body = RUN_FAULTS.replace("requests: 2,", "requests: 200,")
    if how == "stop_when":
        body = body.replace(
            "hypothesis:", "stop_when: [{check: success_rate, min: 0.9}]\n    hypothesis:"
        )
    else:
        held = lambda: bool(admin(proxy, "GET", "/faults")["faults"])  # noqa: E731
        interrupt_when(held)
    with serve(RelayApp()) as url:
        experiment = parse_experiment(experiment_text(url, body), base_dir=TESTS)
        job = functools.partial(
            run_experiment,
            experiment,
            4,
            proxy=proxy.base_url,
            admin_token=TOKEN,
            handle_signals=True,
        )
        result = anyio.run(job)
    assert result.status == ("aborted" if how == "stop_when" else "interrupted")
    assert result.exit_code == 3
    assert admin(proxy, "GET", "/faults")["faults"] == []
    assert sum(c.phase == "inject" for c in result.calls) < 200
    changes = [e["fault_change"]["action"] for e in result.events if "fault_change" in e]
    assert changes == ["added", "removed"]


def interrupt_when(condition: Any, timeout: float = 30.0) -> None:
    """SIGINT to this process once `condition()` holds (polled from a thread)."""

    def wait_and_kill() -> None:
        wait(condition, timeout)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=wait_and_kill, daemon=True).start()


def test_records_the_proxy_dropped_make_attempt_checks_inconclusive(
    proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aichaos.experiment.following as following

    monkeypatch.setattr(following, "POLL_INTERVAL", 3600.0)  # read only when a phase ends
    proxy.app.admin.feeds.attempts = Feed(capacity=2)  # type: ignore[union-attr]
    body = """
        phases: {baseline: false, recovery: false}
        load: {requests: 4, concurrency: 1, prompts: ["Why is the sky blue?"], timeout: 40s}
        hypothesis:
          - {check: success_rate, min: 1.0}
          - {check: served_by, backend: openai, min_share: 1.0}
        """
    with serve(RelayApp()) as url:
        result = run(experiment_text(url, body), proxy.base_url)
    success, served = result.checks
    assert success.verdict == "PASS"  # the calls are the run's own: nothing was lost
    assert served.verdict == "INCONCLUSIVE" and result.exit_code == 1
    assert "records were lost" in served.detail and "dropped 2 attempts" in served.detail
    assert len(result.attempts) == 2


@pytest.mark.parametrize(
    ("where", "token", "says"),
    [
        ("unreachable", TOKEN, "cannot reach the proxy's admin API"),
        ("proxy", "wrong-token", "401: admin token does not match the proxy's"),
        ("proxy", None, "give --admin-token or set AICHAOS_ADMIN_TOKEN"),
    ],
)
def test_an_unusable_proxy_stops_the_run_before_any_load(
    proxy: RunningProxy,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    token: str | None,
    says: str,
) -> None:
    monkeypatch.delenv("AICHAOS_ADMIN_TOKEN", raising=False)
    app = RelayApp()
    url = proxy.base_url if where == "proxy" else "http://127.0.0.1:9"
    with serve(app) as app_url:
        path = tmp_path / "live.yaml"
        path.write_text(experiment_text(app_url, "load: {requests: 2, prompts: [hi]}\n"))
        args = ["run", str(path), "--proxy", url] + (["--admin-token", token] if token else [])
        done = cli(*args)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert f"--proxy {url}:" in done.stderr and "Traceback" not in done.stderr
    assert app.count == 0  # nothing was sent


def test_a_fault_on_a_backend_the_proxy_does_not_serve_is_refused(proxy: RunningProxy) -> None:
    body = "load: {requests: 1, prompts: [hi]}\nfaults: [{backend: claude, kind: outage}]\n"
    text = experiment_text("http://127.0.0.1:9", body)
    text = text.replace(
        "backends: {openai: openai}", "backends: {openai: openai, claude: anthropic}"
    )
    with pytest.raises(ExperimentError) as caught:
        run(text, proxy.base_url)
    assert "backend 'claude'" in caught.value.format()
    assert "it serves: openai" in caught.value.format()


def test_the_feed_is_a_ring_that_says_what_it_dropped() -> None:
    feed = Feed(capacity=3)
    for n in range(5):
        feed.append({"n": n})
    page = feed.read(after=0)
    assert [r["seq"] for r in page["records"]] == [3, 4, 5]
    assert (page["dropped"], page["next"], page["last"]) == (2, 5, 5)
    assert feed.read(after=4)["records"] == [{"seq": 5, "n": 4}]
    assert feed.read(after=5) == {"records": [], "last": 5, "next": 5, "dropped": 0}
    assert feed.read(after=1, limit=1)["records"] == [{"seq": 3, "n": 2}]


def test_feed_records_carry_no_secret(proxy: RunningProxy) -> None:
    """An attempt record's strings go through the same redaction as every output."""
    key = "sk-proj-" + "A1b2C3d4" * 4
    admin(proxy, "GET", "/attempts?after=0&limit=0")  # a follower is here: prompts are noted
    httpx.post(
        f"{proxy.backend_url('openai')}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"key {key}"}]},
        headers={"authorization": f"Bearer {key}"},
    )
    page = admin(proxy, "GET", "/attempts?after=0")
    (record,) = page["records"]
    assert key not in str(page) and record["prompt"] == "key [redacted]"


def test_a_command_target_behind_a_live_proxy_falls_back_and_its_start_up_is_apart() -> None:
    """Issue 11's game day: the router (configured by a file) behind a proxy that runs on its
    own, two OpenAI backends; the run's 429 on the primary goes through that proxy."""
    session = make_session(
        {"primary": {"provider": "openai"}, "secondary": {"provider": "openai"}}, seed=2
    )
    text = """
        version: 1
        backends: {primary: openai, secondary: openai}
        target:
          command:
            run: "{{python}} ../router_app.py --config {{files.config}} --port {{port}}"
            files: {config: router.json}
            ready: "http://127.0.0.1:{{port}}/health"
            http:
              {url: "http://127.0.0.1:{{port}}/chat", json: {prompt: "{{prompt}}"}, output: answer}
        load: {requests: 2, concurrency: 1, prompts: ["hi"]}
        phases: {baseline: {requests: 1}, recovery: false}
        faults: [{backend: primary, kind: rate_limit, name: primary 429}]
        hypothesis:
          - {check: success_rate, min: 1.0}
          - {check: served_by, backend: secondary, min_share: 1.0, phase: inject}
        """
    with serve_proxy_in_thread(session, admin_token=TOKEN) as proxy:
        experiment = parse_experiment(
            textwrap.dedent(text), base_dir=TESTS / "gameday", source=TESTS / "gameday" / "x.yaml"
        )
        job = functools.partial(
            run_experiment, experiment, 1, proxy=proxy.base_url, admin_token=TOKEN
        )
        result = anyio.run(job)
        assert admin(proxy, "GET", "/faults")["faults"] == []
    assert [c.verdict for c in result.checks] == ["PASS", "PASS"]
    journal = journal_dict(result)
    (models,) = journal["startup_attempts"]  # the router's GET /v1/models, via the live proxy
    assert (models["path"], models["backend"]) == ("/v1/models", "primary")
    first, second = [c for c in result.calls if c.phase == "inject"]
    # a 429 from the primary, then the secondary serves; the router benches the primary
    assert [(a.backend, a.status, a.faults) for a in first.attempts] == [
        ("primary", 429, ["primary 429"]),
        ("secondary", 200, []),
    ]
    assert [(a.backend, a.status) for a in second.attempts] == [("secondary", 200)]


def test_a_command_target_that_dies_mid_run_leaves_no_fault_in_the_proxy(
    proxy: RunningProxy,
) -> None:
    text = f"""
        version: 1
        backends: {{openai: openai}}
        target:
          command:
            run: "{{{{python}}}} {TESTS / "tiny_app.py"} {{{{port}}}} --die-after 3"
            ready: "http://127.0.0.1:{{{{port}}}}/"
            http: {{url: "http://127.0.0.1:{{{{port}}}}/chat", json: {{q: "{{{{prompt}}}}"}}}}
        load: {{requests: 100000, concurrency: 1, prompts: ["hi"]}}
        phases: {{baseline: false, recovery: false}}
        faults: [{{backend: openai, kind: outage}}]
        hypothesis: [{{check: success_rate, min: 1.0}}]
        """
    result = run(textwrap.dedent(text), proxy.base_url)
    assert result.status == "aborted" and "tiny app: out of memory" in (result.reason or "")
    changes = [e["fault_change"]["action"] for e in result.events if "fault_change" in e]
    assert changes == ["added", "removed"]
    assert admin(proxy, "GET", "/faults")["faults"] == []


def test_a_proxy_that_restarted_or_dropped_records_is_said() -> None:
    from aichaos.experiment.live_proxy import LiveProxy

    live = LiveProxy("http://127.0.0.1:8800", None, httpx.AsyncClient())
    live.proxy_ids = {"attempts": "a1", "events": "a1"}
    assert live._check("events", {"proxy": "a1", "dropped": 0}) is False
    assert live.lost == []
    assert live._check("attempts", {"proxy": "a1", "dropped": 7}) is False
    # sequence numbers began again: read the new proxy from its start
    assert live._check("attempts", {"proxy": "b2", "dropped": 0}) is True
    assert live._check("events", {"proxy": "b2", "dropped": 0}) is True
    assert live.lost == [
        "the proxy dropped 7 attempts records before the run read them (it keeps the last 10,000)",
        "the proxy restarted during the run (its attempts began again)",
        "the proxy restarted during the run (its events began again)",
    ]


def test_fault_takes_the_proxy_and_token_flags_as_run_spells_them(
    proxy: RunningProxy, cli: Cli
) -> None:
    # `run --proxy URL --admin-token T` and `fault ... --proxy URL --admin-token T`: one way
    # to name the proxy in a game day's two terminals (`--admin`/`--token` still work)
    words = ("--proxy", proxy.base_url, "--admin-token", TOKEN)
    added = cli("fault", "add", "kind=outage", "backend=openai", "name=down", *words)
    assert added.returncode == 0, added.stderr
    assert [f["label"] for f in admin(proxy, "GET", "/faults")["faults"]] == ["down"]
    wrong = cli("fault", "list", "--proxy", proxy.base_url, "--admin-token", "not-the-token")
    assert wrong.returncode != 0 and "401" in wrong.stderr


def test_a_dry_run_with_proxy_names_the_live_proxy_not_in_process_claims(
    tmp_path: Path, cli: Cli
) -> None:
    text = ROUTER + textwrap.dedent("""
        faults: [{backend: primary, kind: rate_limit, name: primary 429}]
        hypothesis: [{check: recovery_time, backend: primary, max: 1s}]
        """)
    (tmp_path / "router.json").write_text((TESTS / "gameday" / "router.json").read_text())
    (tmp_path / "e.yaml").write_text(text)  # a dry run: its command is never started
    own = cli("run", "--dry-run", str(tmp_path / "e.yaml"))
    assert own.returncode == 0, own.stderr
    # two backends of one provider: host claims are an in-process rule, not a command's
    assert "claims" not in own.stdout
    assert "  primary: provider openai, upstream mock, through the run's proxy" in own.stdout
    assert "recovery_time primary <= 1.00s" in own.stdout
    url = "http://127.0.0.1:8800"
    live = cli("run", "--dry-run", "--proxy", url, str(tmp_path / "e.yaml"))
    assert live.returncode == 0, live.stderr
    assert f"  secondary: provider openai, through the live proxy {url}" in live.stdout
