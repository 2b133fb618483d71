"""The proxy's admin API (faults live, kill switch, counters, auth), the `aichaos fault` and
`aichaos proxy` commands against live proxies, and the pieces they are built from."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from rich.console import Console

from aichaos.cli import main
from aichaos.commands.proxy import build_settings, load_experiment_settings
from aichaos.experiment import ExperimentError, load_experiment
from aichaos.faults.spec import FaultSpecError, build_fault, parse_assignments, parse_yaml
from aichaos.proxy import AdminExposedError, RunningProxy, serve_proxy, serve_proxy_in_thread
from aichaos.proxy.admin import AdminAPI
from aichaos.proxy.config import ProxyConfigError, infer_provider, parse_upstream
from aichaos.proxy.stats import BoundedRecorder, ProxyStats
from aichaos.proxy.view import LineView, LiveView
from aichaos.records import Attempt
from proxy_helpers import make_session, wait_for

MESSAGES = [{"role": "user", "content": "hi"}]
YAML = {"content-type": "application/yaml"}
JSON = {"content-type": "application/json"}
_TARGET = "target:\n  http: {url: 'http://127.0.0.1:9/chat'}\nload: {requests: 1}\n"


@pytest.fixture(scope="module")
def proxy() -> Iterator[RunningProxy]:
    with serve_proxy_in_thread(make_session({"openai": "openai", "claude": "anthropic"})) as p:
        yield p


@pytest.fixture
def admin(proxy: RunningProxy) -> Iterator[str]:
    proxy.session.engine.clear()
    proxy.session.engine.paused = False
    yield proxy.admin_url
    proxy.session.engine.clear()
    proxy.session.engine.paused = False


def _chat(proxy: RunningProxy) -> Any:
    client = openai.OpenAI(base_url=proxy.backend_url("openai") + "/v1", api_key="k", max_retries=0)
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]


# --- admin API ------------------------------------------------------------------------
def test_add_list_remove_clear_faults(proxy: RunningProxy, admin: str) -> None:
    added = httpx.post(admin + "/faults", json={"kind": "outage", "backend": "openai"})
    assert added.status_code == 201
    (fault_id,) = added.json()["added"]
    with pytest.raises(openai.InternalServerError):
        _chat(proxy)
    listed = httpx.get(admin + "/faults").json()
    assert listed["paused"] is False
    (entry,) = listed["faults"]
    assert (entry["id"], entry["kind"], entry["injected"]) == (fault_id, "outage", 1)
    assert entry["spec"] == {"kind": "outage", "backend": "openai"}
    yaml_body = "- {kind: latency, delay: 10ms}\n- {kind: rate_limit, backend: claude}\n"
    assert len(httpx.post(admin + "/faults", content=yaml_body, headers=YAML).json()["added"]) == 2
    assert httpx.delete(f"{admin}/faults/{fault_id}", headers=JSON).json() == {"removed": fault_id}
    assert httpx.delete(f"{admin}/faults/{fault_id}", headers=JSON).status_code == 404
    assert _chat(proxy).choices  # the outage is gone
    assert httpx.delete(admin + "/faults", headers=JSON).json() == {"cleared": 2}
    assert httpx.get(admin + "/faults").json()["faults"] == []


def test_invalid_faults_are_refused_with_a_reason(admin: str) -> None:
    cases = {
        "kind: outgae": "did you mean 'outage'",
        "{kind: outage, probability: 3}": "probability",
        "{kind: outage, backend: opneai}": "did you mean 'openai'",
        "[1, 2": "not valid YAML",
        "{backend: openai}": "needs a kind",
    }
    for body, reason in cases.items():
        response = httpx.post(admin + "/faults", content=body, headers=YAML)
        assert response.status_code == 400, body
        assert reason in response.json()["error"]["message"], body
    assert httpx.get(admin + "/faults").json()["faults"] == []


def test_kill_switch_pauses_and_resumes_injection(proxy: RunningProxy, admin: str) -> None:
    httpx.post(admin + "/faults", json={"kind": "outage"})
    assert httpx.post(admin + "/pause", headers=JSON).json() == {"paused": True}
    assert _chat(proxy).choices  # paused: passes untouched
    assert httpx.get(admin + "/faults").json()["paused"] is True
    assert httpx.post(admin + "/resume", headers=JSON).json() == {"paused": False}
    with pytest.raises(openai.InternalServerError):
        _chat(proxy)


def test_stats_and_backends(proxy: RunningProxy, admin: str) -> None:
    _chat(proxy)
    stats = httpx.get(admin + "/stats").json()
    openai_stats = stats["backends"]["openai"]
    assert openai_stats["requests"] >= 1 and openai_stats["statuses"]["200"] >= 1
    assert openai_stats["latency_ms"]["p50"] > 0
    assert stats["inflight"] == 0
    backends = httpx.get(admin + "/backends").json()
    assert backends["claude"] == {
        "provider": "anthropic",
        "upstream": "mock",
        "url": proxy.backend_url("claude"),
    }
    assert httpx.get(admin + "/nope").status_code == 404


def test_admin_token_required_beyond_loopback() -> None:
    session = make_session({"openai": "openai"})
    with pytest.raises(AdminExposedError), serve_proxy_in_thread(session, host="0.0.0.0"):
        pass
    with serve_proxy_in_thread(session, host="0.0.0.0", admin_token="s3cret") as proxy:
        url = proxy.admin_url + "/faults"
        missing = httpx.get(url)
        assert missing.status_code == 401
        assert missing.json()["error"]["message"] == "admin token required (Bearer TOKEN)"
        wrong = httpx.get(url, headers={"authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["message"] == "admin token does not match the proxy's"
        assert httpx.get(url, headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(url, headers={"x-aichaos-token": "s3cret"}).status_code == 200
        assert httpx.post(proxy.admin_url + "/pause").status_code == 401
        assert session.engine.paused is False
        assert _chat(proxy).choices  # proxied traffic needs no admin token
    with serve_proxy_in_thread(session, host="0.0.0.0", admin=False) as proxy:
        assert httpx.get(proxy.admin_url + "/faults").status_code == 404


def test_admin_without_token_serves_loopback_clients_only() -> None:
    session = make_session({"openai": "openai"})
    api = AdminAPI(session, ProxyStats())

    async def call(client: str) -> int:
        sent: list[dict[str, Any]] = []
        headers = [(b"host", b"localhost:8800")]  # a loopback Host: the client is judged
        scope = {"type": "http", "method": "GET", "path": "/_aichaos/faults", "headers": headers}
        scope["client"] = (client, 5000)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await api(scope, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(call("127.0.0.1")) == 200
    assert asyncio.run(call("::1")) == 200
    assert asyncio.run(call("10.1.2.3")) == 403


def test_serve_proxy_refuses_a_busy_port() -> None:
    session = make_session({"openai": "openai"})

    async def scenario() -> None:
        async with serve_proxy(session) as first:
            with pytest.raises(OSError):
                async with serve_proxy(session, port=first.port):
                    pass

    asyncio.run(scenario())


# --- `aichaos fault` ------------------------------------------------------------------
def test_fault_command_against_a_live_proxy(
    proxy: RunningProxy, admin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = proxy.base_url
    assert main(["fault", "add", "--admin", base, "kind=outage", "backend=openai"]) == 0
    assert capsys.readouterr().out.startswith("added f")
    with pytest.raises(openai.InternalServerError):
        _chat(proxy)
    yaml_fault = "{kind: latency, delay: 5ms, window: {duration: 1m}}"
    assert main(["fault", "add", "--admin", base, "--yaml", yaml_fault]) == 0
    capsys.readouterr()
    assert main(["fault", "list", "--admin", base]) == 0
    listing = capsys.readouterr().out
    assert "outage" in listing and "injected=1" in listing and "delay=5ms" in listing
    ids = [armed.id for armed in proxy.session.engine.faults]
    assert main(["fault", "remove", "--admin", base, ids[0]]) == 0
    assert [a.id for a in proxy.session.engine.faults] == ids[1:]
    assert main(["fault", "pause", "--admin", base]) == 0
    assert proxy.session.engine.paused is True
    assert capsys.readouterr().out.splitlines() == [
        f"removed {ids[0]}",
        "paused: no fault is injected",
    ]
    assert main(["fault", "resume", "--admin", base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"paused": False}
    assert main(["fault", "clear", "--admin", base]) == 0
    assert proxy.session.engine.faults == []


def test_fault_command_errors(
    proxy: RunningProxy, admin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = proxy.base_url
    assert main(["fault", "add", "--admin", base, "kind=outgae"]) == 2
    assert "did you mean 'outage'" in capsys.readouterr().err
    assert main(["fault", "add", "--admin", base, "kind=outage", "probability=7"]) == 2
    assert "probability" in capsys.readouterr().err
    assert main(["fault", "add", "--admin", base, "kind=outage", "backend=nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    assert main(["fault", "add", "--admin", base, "outage"]) == 2
    assert "key=value" in capsys.readouterr().err
    assert main(["fault", "list", "--admin", "ftp:/x"]) == 2
    assert "give the proxy's URL" in capsys.readouterr().err
    assert main(["fault", "list", "--admin", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert proxy.session.engine.faults == []
    with serve_proxy_in_thread(make_session({"openai": "openai"}), admin_token="tok") as locked:
        assert main(["fault", "list", "--admin", locked.base_url]) == 1
        assert "--token" in capsys.readouterr().err
        assert main(["fault", "list", "--admin", locked.base_url, "--token", "tok"]) == 0


# --- `aichaos proxy` as a process ------------------------------------------------------
def test_proxy_command_end_to_end(tmp_path: Path) -> None:
    experiment = tmp_path / "game.yaml"
    experiment.write_text(
        "version: 1\nseed: 5\nbackends:\n  openai: {provider: openai}\n"
        "faults:\n  - {kind: outage, backend: openai, first: 1}\n" + _TARGET
    )
    command = [sys.executable, "-m", "aichaos", "proxy", "--port", "0", "--view", "lines"]
    command += ["--experiment", str(experiment), "--upstream", "claude=mock"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("aichaos proxy on http://127.0.0.1:"), first
        base = first.split()[3]
        banner = [process.stdout.readline() for _ in range(5)]
        assert any("OPENAI_BASE_URL=" + base + "/openai/v1" in line for line in banner)
        client = openai.OpenAI(base_url=base + "/openai/v1", api_key="sk-SECRET-1", max_retries=2)
        answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
        lines = [process.stdout.readline() for _ in range(2)]
        assert "/v1/chat/completions 500" in lines[0] and "faults=outage" in lines[0]
        assert "/v1/chat/completions 200" in lines[1]
        stats = httpx.get(base + "/_aichaos/stats").json()
        assert set(stats["backends"]) == {"openai"} and stats["requests"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "SECRET" not in out + err + "".join(lines)


def test_proxy_command_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxy", "--upstream", "mystery=http://x.test"]) == 2
    assert "cannot tell the wire format" in capsys.readouterr().err
    assert main(["proxy", "--host", "0.0.0.0"]) == 2
    assert "--admin-token" in capsys.readouterr().err


# --- building blocks -------------------------------------------------------------------
def test_parse_assignments_reads_yaml_scalars_and_nesting() -> None:
    data = parse_assignments(
        [
            "kind=error",
            "status=503",
            "probability=0.5",
            "backend=[a, b]",
            "window.start=5s",
            "match.model=gpt-4*",
            "match.stream=true",
            "message=",
            "code=*",
        ]
    )
    assert data == {
        "kind": "error",
        "status": 503,
        "probability": 0.5,
        "backend": ["a", "b"],
        "window": {"start": "5s"},
        "match": {"model": "gpt-4*", "stream": True},
        "message": "",
        "code": "*",
    }
    with pytest.raises(FaultSpecError):
        parse_assignments(["window=1", "window.start=2"])
    assert parse_yaml("{kind: outage}") == [{"kind": "outage"}]
    assert build_fault({"kind": "outage", "backend": ["a", "*"]}, backends=["a"]).kind == "outage"


def test_parse_upstream_forms() -> None:
    name, spec = parse_upstream("openai=https://api.openai.com/")
    assert (name, spec.provider, spec.upstream) == ("openai", "openai", "https://api.openai.com")
    name, spec = parse_upstream("fallback=anthropic@https://gw.example/anthropic")
    assert (spec.provider, spec.upstream) == ("anthropic", "https://gw.example/anthropic")
    assert parse_upstream("claude-b=mock")[1].is_mock
    assert parse_upstream("x=gemini@mock")[1].provider == "gemini"
    assert infer_provider("azure-east") == "azure" and infer_provider("my-gpt") == "openai"
    for bad in ("openai", "=http://x", "9x=http://x", "openai=ftp://x", "q=nope@http://x"):
        with pytest.raises(ProxyConfigError):
            parse_upstream(bad)


def test_settings_from_experiment_and_upstreams(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(
        "version: 1\nseed: 9\nbackends:\n  a: {provider: openai, upstream: http://h:1}\n"
        "  b: anthropic\nfaults:\n  - {kind: outage, backend: a}\n" + _TARGET
    )
    settings = build_settings(path, ["c=openai@http://h:1"])
    assert list(settings.backends) == ["a", "b", "c"]
    assert settings.seed == 9 and [f.kind for f in settings.faults] == ["outage"]
    # Two backends on one upstream (two keys on one API): the proxy routes by path, so both
    # keep the upstream as given and a proxy session accepts them.
    assert settings.backends["c"].upstream == settings.backends["a"].upstream == "http://h:1"
    from aichaos.faults import FaultEngine
    from aichaos.intercept.session import Session
    from aichaos.mock import MockBackend
    from aichaos.proxy.app import ProxyApp
    from aichaos.records import Recorder

    session = Session(settings.backends, FaultEngine(), MockBackend(), Recorder())
    assert ProxyApp(session).session.backends.keys() == {"a", "b", "c"}
    assert list(build_settings(None, []).backends) == ["openai", "anthropic", "gemini", "azure"]
    path.write_text(
        "version: 1\nbackends: {a: openai}\nfaults:\n  - {kind: outage, backend: z}\n" + _TARGET
    )
    with pytest.raises(ProxyConfigError, match="'z'"):
        load_experiment_settings(path)


def test_proxy_experiment_does_not_import_the_app(tmp_path: Path) -> None:
    """The proxy takes backends and faults; the app it serves runs elsewhere, so its python
    target (and python checks) are not imported: no import-time code runs in the proxy, and
    a module the proxy cannot import is not a reason to refuse (validate still checks it)."""
    (tmp_path / "app_seen_by_proxy.py").write_text(
        "raise RuntimeError('imported by the proxy')\ndef answer(prompt): return prompt\n"
    )
    path = tmp_path / "e.yaml"
    path.write_text(
        "version: 1\nbackends: {a: openai}\nfaults:\n  - {kind: outage, backend: a}\n"
        "target:\n  python: app_seen_by_proxy:answer\nload: {requests: 1}\n"
        "hypothesis:\n  - {check: python, function: 'missing_module_xyz:check'}\n"
    )
    settings = load_experiment_settings(path)
    assert [f.kind for f in settings.faults] == ["outage"]
    assert "app_seen_by_proxy" not in sys.modules
    with pytest.raises(ExperimentError, match="imported by the proxy"):
        load_experiment(path)  # run and validate still import it


def test_line_view_and_live_view_show_no_secrets() -> None:
    stats = ProxyStats()
    out = io.StringIO()
    LineView(stats, Console(file=out, width=200))
    attempt = Attempt("openai", "openai", "POST", "/v1/chat/completions", "gpt-4o", True)
    attempt.status, attempt.duration, attempt.ttft = 200, 0.0123, 0.004
    attempt.faults = ["latency"]
    stats.opened("openai")
    stats.closed(attempt)
    line = out.getvalue()
    assert "openai POST /v1/chat/completions 200 12.3ms ttft=4.0ms faults=latency" in line
    session = make_session({"openai": "openai"}, faults=[{"kind": "outage"}])
    session.engine.paused = True
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(LiveView(stats, session.engine, console).render())
    text = console.export_text()
    assert "openai" in text and "PAUSED" in text and "outage" in text


def test_line_view_and_stats_show_a_cut_streams_outcome() -> None:
    cut = {"kind": "stream_cut", "after": 2, "mode": "no_terminator"}
    session = make_session({"openai": "openai"}, faults=[cut])
    out = io.StringIO()
    with serve_proxy_in_thread(session) as proxy:
        LineView(proxy.stats, Console(file=out, width=200))
        body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        url = proxy.backend_url("openai") + "/v1/chat/completions"
        with httpx.stream("POST", url, json=body) as answer:
            assert answer.status_code == 200
            answer.read()
        wait_for(lambda: proxy.stats.inflight == 0 and out.getvalue())
        snapshot = proxy.stats.snapshot()["backends"]["openai"]
    assert " POST /v1/chat/completions 200 stream_incomplete " in out.getvalue()
    assert snapshot["outcomes"] == {"stream_incomplete": 1}
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(LiveView(proxy.stats, session.engine, console).render())
    lines = console.export_text().splitlines()
    header = [cell.strip() for cell in lines[1].split("┃")]
    row = [cell.strip() for cell in lines[3].split("│")]
    assert (row[header.index("backend")], row[header.index("cut")]) == ("openai", "1")


def test_bounded_recorder_keeps_the_latest() -> None:
    recorder = BoundedRecorder(keep=10)
    for index in range(45):
        recorder.begin(Attempt("b", "openai", "GET", f"/{index}", None, False))
    assert 10 <= len(recorder.attempts) < 20 and recorder.attempts[-1].path == "/44"


def test_the_line_view_writes_the_lines_of_a_moment_together_and_all_at_the_end() -> None:
    class Writes(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

    def attempt(status: int) -> Attempt:
        done = Attempt("openai", "openai", "POST", "/v1/chat/completions", "gpt-4o", False)
        done.status, done.duration = status, 0.01
        return done

    async def serve() -> tuple[str, int, str]:
        stats, out = ProxyStats(), Writes()
        view = LineView(stats, Console(file=out, width=200))
        for status in (200, 500):
            stats.opened("openai")
            stats.closed(attempt(status))
        held = out.getvalue()  # nothing yet: the two go out together
        while not out.getvalue():
            await asyncio.sleep(0.01)
        stats.opened("openai")
        stats.closed(attempt(429))
        view.close()  # the proxy stopped: what is held is written at once
        return held, out.writes, out.getvalue()

    held, writes, text = asyncio.run(serve())
    assert held == "" and writes == 2
    assert [line.split()[4] for line in text.splitlines()] == ["200", "500", "429"]
