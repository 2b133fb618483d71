"""Secrets planted in every place a client puts them, through the proxy: none reaches its
log (the line view, Python logging), its cassette, its admin answers (stats,
backends, faults, metrics) or the answers it makes itself (502, 404, 413). The run's own
outputs (journal, JUnit, HTML, Markdown, console, --dry-run), where the records go, are
searched by
`test_experiment_reports.test_planted_keys_never_appear_in_any_output`."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from aichaos.intercept.backends import BackendSpec
from aichaos.proxy import serve_proxy_in_thread
from aichaos.proxy.view import LineView
from proxy_helpers import ScriptedUpstream, make_session, wait_for
from servers import serve

BEARER = "sk-proj-plantedBearer0a1b2c3d4e5f6g7h8i9j"
ANTHROPIC = "sk-ant-api03-plantedHeader-0a1b2c3d4e5f6g7h"
AZURE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # Azure's shape: 32 hex characters
GEMINI = "AIzaSyPlantedQueryKey0123456789abcdefg"
IN_PROMPT = "ghp_plantedInPrompt0123456789abcdefABCD"
IN_PATH = "sk-plantedInPath0123456789abcdefghij"
URL_PASSWORD = "planted-url-pass-7Qw"
SECRETS = (BEARER, ANTHROPIC, AZURE, GEMINI, IN_PROMPT, IN_PATH, URL_PASSWORD)


def test_secrets_sent_through_the_proxy_reach_no_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cassette = tmp_path / "cassette"
    upstream = ScriptedUpstream()
    with serve(upstream) as base:
        backends = {
            "up": BackendSpec(provider="openai", upstream=base, record=str(cassette)),
            "down": BackendSpec(provider="openai", upstream="http://127.0.0.1:9"),
        }
        session = make_session(backends, [{"kind": "latency", "delay": "1ms", "backend": "up"}])
        log = io.StringIO()
        answers: list[str] = []
        with serve_proxy_in_thread(session, max_body=64 * 1024) as proxy:
            LineView(proxy.stats, Console(file=log, width=300))
            headers = {
                "authorization": f"Bearer {BEARER}",
                "x-api-key": ANTHROPIC,
                "api-key": AZURE,
                "x-goog-api-key": GEMINI,
            }
            chat = {
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": f"my token is {IN_PROMPT}"}],
            }
            query = {"key": GEMINI, "api-version": "2024-10-21"}
            with httpx.Client(headers=headers, params=query, timeout=30) as client:
                session.engine.paused = True  # recorded as the upstream answered
                assert client.post(proxy.backend_url("up") + "/v1/chat/completions", json=chat)
                session.engine.paused = False  # and through a fault
                client.post(proxy.backend_url("up") + "/v1/chat/completions", json=chat)
                made = [
                    client.post(proxy.backend_url("down") + "/v1/chat/completions", json=chat),
                    client.post(proxy.backend_url("down") + f"/v1/files/{IN_PATH}", json=chat),
                    client.post(f"{proxy.base_url}/nowhere/{IN_PATH}", json=chat),
                    client.post(
                        proxy.backend_url("up") + "/v1/chat/completions",
                        content=json.dumps(chat).encode() * 2000,
                    ),
                ]
                assert [a.status_code for a in made] == [502, 502, 404, 413]
                answers += [a.text for a in made]
                for path in ("stats", "backends", "faults", "metrics"):
                    answers.append(client.get(f"{proxy.admin_url}/{path}").text)
            wait_for(lambda: proxy.stats.inflight == 0)
            # the line view writes the lines of each 50 ms together: wait for all of them
            lines = lambda: log.getvalue().count("\n")  # noqa: E731
            wait_for(lambda: lines() == len(proxy.session.recorder.attempts))
        # a password in an upstream URL is refused without being repeated
        with pytest.raises(ValueError) as refused:
            BackendSpec(provider="openai", upstream=f"https://bob:{URL_PASSWORD}@gateway.test")
        answers.append(str(refused.value))
    assert len(upstream.requests) == 2  # the secrets did reach the upstream, where they belong
    assert upstream.requests[0]["query"] == f"key={GEMINI}&api-version=2024-10-21".encode()
    recorded = "".join(p.read_text() for p in sorted(cassette.iterdir()))
    assert "my token is" in recorded  # the prompt was recorded, its key removed
    logged = [  # the proxy's and its server's logs (not the test client's own)
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("aichaos", "uvicorn"))
    ]
    everything = "\n".join([log.getvalue(), *logged, recorded, *answers])
    assert "/v1/chat/completions 502" in log.getvalue()
    for secret in SECRETS:
        assert secret not in everything, secret
