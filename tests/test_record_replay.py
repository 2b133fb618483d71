"""Record real-looking provider traffic once, replay it offline with the real SDKs.

The stand-in provider is the embedded mock served on a real uvicorn socket with paced
streams (it answers like OpenAI and Anthropic, streaming and not); it is the "real
upstream" the proxy records. Replays then run with no upstream at all: in-process,
through the proxy and from `aichaos mock --replay`'s app.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

import aichaos
from aichaos.cassette import CassetteError, ReplaySource, read_cassette_dir
from aichaos.cassette.format import Interaction
from aichaos.cassette.har import import_har
from aichaos.experiment import ExperimentError, parse_experiment
from aichaos.mock import MockConfig, create_app
from aichaos.proxy.server import serve_proxy_in_thread
from aichaos.wire.exchange import RequestInfo
from conftest import Cli
from proxy_helpers import make_session
from servers import serve

OPENAI_KEY = "sk-proj-PLANTEDopenaiKEY0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-PLANTEDanthropicKEY0123456789"
AZURE_KEY = "0123456789abcdef0123456789abcdef"
BODY_KEY = "AIzaSyPLANTEDgoogleKEY0123456789abcdefg"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, AZURE_KEY, BODY_KEY, "PLANTED", "hunter2")
PROMPT = "What is 2+2?"
GAP = 0.01  # the stand-in's seconds between streamed tokens (100 tokens/s)


def _record(directory: Path) -> dict[str, Any]:
    """Record chat (plain and streamed) and messages (plain and streamed) through the
    proxy from the stand-in; what the SDKs got, and the streams' raw bytes and times."""
    seen: dict[str, Any] = {}
    with serve(create_app(MockConfig(seed=3, tokens_per_second=1 / GAP))) as stand_in:
        session = make_session(
            {
                "openai": {"provider": "openai", "upstream": stand_in, "record": str(directory)},
                "claude": {"provider": "anthropic", "upstream": stand_in, "record": str(directory)},
            }
        )
        with serve_proxy_in_thread(session) as proxy:
            seen.update(_ask(proxy.backend_url("openai") + "/v1", proxy.backend_url("claude")))
            # secrets where a user may have them: a query key, a body field, a prompt
            httpx.post(
                proxy.backend_url("openai") + f"/v1/chat/completions?key={BODY_KEY}",
                headers={"api-key": AZURE_KEY, "authorization": f"Bearer {OPENAI_KEY}"},
                json={
                    "model": "gpt-4o",
                    "api_key": "hunter2",
                    "messages": [{"role": "user", "content": f"my key is {BODY_KEY}"}],
                },
            ).raise_for_status()
            start = time.perf_counter()
            with httpx.stream(
                "POST",
                proxy.backend_url("openai") + "/v1/chat/completions",
                json=_stream_body(),
                headers={"authorization": f"Bearer {OPENAI_KEY}"},
            ) as response:
                seen["raw"] = b"".join(response.iter_raw())
            seen["raw_seconds"] = time.perf_counter() - start
    return seen


def _stream_body() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "stream_options": {"include_usage": True},
    }


def _ask(openai_base: str | None = None, anthropic_base: str | None = None) -> dict[str, Any]:
    gpt = openai.OpenAI(api_key=OPENAI_KEY, base_url=openai_base, max_retries=0)
    claude = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=anthropic_base, max_retries=0)
    messages: Any = [{"role": "user", "content": PROMPT}]
    chat = gpt.chat.completions.create(model="gpt-4o", messages=messages)
    chunks = gpt.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=messages
    ) as stream:
        claude_streamed = "".join(stream.text_stream)
    return {
        "chat": chat.choices[0].message.content,
        "chat_id": chat.id,
        "chat_stream": streamed,
        "message": message.content[0].text,  # type: ignore[union-attr]
        "message_stream": claude_streamed,
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("cassette")
    return directory, _record(directory)


def test_recording_writes_a_versioned_line_per_exchange_and_no_secret(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    directory, _ = recorded
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["claude.jsonl", "openai.jsonl"]
    interactions = read_cassette_dir(directory)
    assert len(interactions) == 2 + 4  # two messages; two chats, the planted one, a raw stream
    lines = [json.loads(line) for p in directory.iterdir() for line in p.read_text().splitlines()]
    assert {line["v"] for line in lines} == {1}
    streamed = [i for i in interactions if i.events is not None]
    assert len(streamed) == 3 and all(i.outcome == "complete" for i in interactions)
    # events keep their timing: the stand-in paces tokens GAP apart
    gaps = [delay for i in streamed for delay, _ in i.events or [] if delay > 0]
    assert gaps and max(gaps) >= GAP / 2
    text = "".join(p.read_text() for p in directory.iterdir())
    for secret in SECRETS:
        assert secret not in text, secret
    planted = next(i for i in interactions if "my key" in json.dumps(i.request_body))
    assert planted.query == "" and "authorization" not in planted.request_headers


def test_replayed_in_process_answers_like_the_recording(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    directory, seen = recorded
    backends = {
        "openai": {"provider": "openai", "upstream": f"replay:{directory}"},
        "claude": {"provider": "anthropic", "upstream": f"replay:{directory}"},
    }
    with aichaos.inject(backends=backends) as chaos:
        again = _ask()
        start = time.perf_counter()
        with httpx.stream(
            "POST", "https://api.openai.com/v1/chat/completions", json=_stream_body()
        ) as response:
            raw = b"".join(response.iter_raw())
        seconds = time.perf_counter() - start
    assert again == {k: seen[k] for k in again}
    assert raw == seen["raw"]  # byte for byte
    assert seconds >= seen["raw_seconds"] * 0.5  # recorded pacing kept (a lower bound)
    assert {a.replay for a in chaos.attempts} == {"hit"}
    assert all(a.outcome == "complete" for a in chaos.attempts)


def test_faults_apply_on_top_of_replayed_answers(recorded: tuple[Path, dict[str, Any]]) -> None:
    directory, seen = recorded
    backends = {"openai": {"provider": "openai", "upstream": f"replay:{directory}"}}
    faults = [
        {"kind": "empty_completion", "backend": "openai", "match": {"stream": False}},
        {"kind": "stream_cut", "backend": "openai", "after": 2, "mode": "no_terminator"},
    ]
    client = openai.OpenAI(api_key=OPENAI_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": PROMPT}]
    with aichaos.inject(faults, backends=backends) as chaos:
        chat = client.chat.completions.create(model="gpt-4o", messages=messages)
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
        )
    assert chat.choices[0].message.content == "" and chat.id == seen["chat_id"]
    cut = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert cut != seen["chat_stream"] and seen["chat_stream"].startswith(cut)
    assert [a.outcome for a in chaos.attempts] == ["complete", "stream_incomplete"]


def test_a_miss_names_the_closest_recording_or_goes_to_the_mock(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    directory, _ = recorded
    client = openai.OpenAI(api_key=OPENAI_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "What is 3+3?"}]
    backends: dict[str, Any] = {"openai": {"provider": "openai", "upstream": f"replay:{directory}"}}
    with aichaos.inject(backends=backends) as chaos, pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=messages)
    assert "closest recorded is POST /v1/chat/completions model gpt-4o" in str(err.value)
    assert "messages" in str(err.value)
    assert [a.replay for a in chaos.attempts] == ["miss"]
    backends["openai"]["on_miss"] = "mock"
    with aichaos.inject(backends=backends) as chaos:
        answer = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert answer.choices[0].message.content and [a.replay for a in chaos.attempts] == ["miss"]


def test_replayed_through_the_proxy_and_the_mock_server(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    directory, seen = recorded
    session = make_session(
        {
            "openai": {"provider": "openai", "upstream": f"replay:{directory}", "speed": 10},
            "claude": {"provider": "anthropic", "upstream": f"replay:{directory}"},
        }
    )
    with serve_proxy_in_thread(session) as proxy:
        through_proxy = _ask(proxy.backend_url("openai") + "/v1", proxy.backend_url("claude"))
    assert through_proxy == {k: seen[k] for k in through_proxy}
    with serve(create_app(replay=ReplaySource(directory))) as mock:
        from_mock = _ask(mock + "/v1", mock)
    assert from_mock == through_proxy


def test_har_files_become_cassettes(tmp_path: Path) -> None:
    events = [
        {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        for word in ("Four", ".")
    ]
    stream = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events) + "data: [DONE]\r\n\r\n"
    har = {
        "log": {
            "version": "1.2",
            "entries": [
                {
                    "startedDateTime": "2026-11-30T10:00:00Z",
                    "request": {
                        "method": "POST",
                        "url": f"https://api.openai.com/v1/chat/completions?key={BODY_KEY}",
                        "headers": [{"name": "Authorization", "value": f"Bearer {OPENAI_KEY}"}],
                        "postData": {
                            "mimeType": "application/json",
                            "text": json.dumps(
                                {
                                    "model": "gpt-4o",
                                    "stream": True,
                                    "messages": [{"role": "user", "content": PROMPT}],
                                }
                            ),
                        },
                    },
                    "response": {
                        "status": 200,
                        "headers": [{"name": "Content-Type", "value": "text/event-stream"}],
                        "content": {"mimeType": "text/event-stream", "text": stream},
                    },
                    "timings": {"wait": 120, "receive": 40},
                }
            ],
        }
    }
    path = tmp_path / "capture.har"
    path.write_text(json.dumps(har))
    assert import_har(path, tmp_path / "cassette") == 1
    text = (tmp_path / "cassette" / "openai.jsonl").read_text()
    assert OPENAI_KEY not in text and BODY_KEY not in text
    client = openai.OpenAI(api_key=OPENAI_KEY, max_retries=0)
    backends = {"openai": {"provider": "openai", "upstream": f"replay:{tmp_path / 'cassette'}"}}
    with aichaos.inject(backends=backends):
        chunks = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Four."


def test_cassette_mistakes_are_clear(tmp_path: Path, cli: Cli) -> None:
    with pytest.raises(CassetteError, match="no such cassette directory"):
        ReplaySource(tmp_path / "absent")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jsonl").write_text('{"v": 1, "request": {}}\n')
    with pytest.raises(CassetteError, match=r"x\.jsonl:1: not an exchange"):
        ReplaySource(tmp_path / "bad")
    text = "version: 1\nbackends:\n  openai: {provider: openai, upstream: 'replay:nowhere'}\n"
    text += "target: {python: 'os:getcwd'}\nload: {requests: 1}\n"
    with pytest.raises(ExperimentError) as err:
        parse_experiment(text, file="e.yaml", base_dir=tmp_path)
    assert "e.yaml:3" in str(err.value) and "backends.openai.upstream" in str(err.value)
    assert "no such cassette directory" in str(err.value)
    run = cli("mock", "--replay", str(tmp_path / "bad"), "--port", "0")
    assert run.returncode == 2 and "x.jsonl:1" in run.stderr
    run = cli("proxy", "--record", str(tmp_path / "rec"), "--port", "0")
    assert run.returncode == 2 and "no backend has one" in run.stderr


def test_a_raw_fault_answers_with_one_recorded_exchange(
    recorded: tuple[Path, dict[str, Any]],
) -> None:
    directory, seen = recorded
    line = next(
        i.where
        for i in read_cassette_dir(directory)
        if i.backend == "openai" and i.events is None and PROMPT in json.dumps(i.request_body)
    )
    client = openai.OpenAI(api_key=OPENAI_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "anything at all"}]
    with aichaos.inject([{"kind": "raw", "backend": "openai", "recorded": line}]) as chaos:
        chat = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert chat.choices[0].message.content == seen["chat"] and chat.id == seen["chat_id"]
    assert chaos.attempts[0].faults == ["raw(200)"]
    with pytest.raises(ValueError, match="has no line 999"):
        aichaos.fault("raw", recorded=f"{line.rpartition(':')[0]}:999")


def test_recording_problems_are_caught_before_anything_is_lost(tmp_path: Path, cli: Cli) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    run = cli("proxy", "--record", str(afile / "x"), "--upstream", "openai=http://127.0.0.1:9")
    assert run.returncode == 2 and "is not a directory" in run.stderr
    text = (
        "version: 1\nbackends:\n  openai: {provider: openai, upstream: 'http://127.0.0.1:9',"
        f" record: '{afile}/x'}}\ntarget: {{python: 'os:getcwd'}}\nload: {{requests: 1}}\n"
    )
    with pytest.raises(ExperimentError) as err:
        parse_experiment(text, file="e.yaml", base_dir=tmp_path)
    assert "e.yaml:3" in str(err.value) and "backends.openai.record" in str(err.value)


def test_a_fault_on_an_undeclared_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="did you mean 'openai'"):
        aichaos.inject([{"kind": "outage", "backend": "opnai"}])


def test_a_redacted_prompt_still_replays(tmp_path: Path) -> None:
    # the recording holds `[redacted]` where the prompt had a key; the same request matches
    messages: Any = [{"role": "user", "content": f"my key is {OPENAI_KEY}"}]
    with serve(create_app(MockConfig(seed=3))) as stand_in:
        session = make_session(
            {"openai": {"provider": "openai", "upstream": stand_in, "record": str(tmp_path)}}
        )
        with serve_proxy_in_thread(session) as proxy:
            gpt = openai.OpenAI(api_key="x", base_url=proxy.backend_url("openai") + "/v1")
            first = gpt.chat.completions.create(model="gpt-4o", messages=messages)
    assert OPENAI_KEY not in (tmp_path / "openai.jsonl").read_text()
    backends = {"openai": {"provider": "openai", "upstream": f"replay:{tmp_path}"}}
    with aichaos.inject(backends=backends) as chaos:
        again = openai.OpenAI(api_key="x").chat.completions.create(
            model="gpt-4o", messages=messages
        )
    assert again.id == first.id and [a.replay for a in chaos.attempts] == ["hit"]


def test_a_backend_replays_only_what_was_recorded_for_it(tmp_path: Path) -> None:
    """One directory recorded from several backends: each replays its own exchanges."""

    def exchange(backend: str, provider: str, path: str, text: str) -> str:
        body = json.dumps({"answer": text}).encode()
        headers = [("content-type", "application/json")]
        recorded = Interaction("POST", path, 200, headers, body=body)
        recorded.backend, recorded.provider = backend, provider
        recorded.request_body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
        return recorded.to_line() + "\n"

    chat = "/v1/chat/completions"
    (tmp_path / "primary.jsonl").write_text(exchange("primary", "openai", chat, "primary"))
    (tmp_path / "fallback.jsonl").write_text(exchange("fallback", "openai", chat, "fallback"))
    (tmp_path / "claude.jsonl").write_text(exchange("claude", "anthropic", "/v1/messages", "c"))
    request = RequestInfo(
        "POST", "http://x" + chat, "x", chat, "", {},
        json.dumps({"model": "m", "messages": [{"role": "user", "content": "q"}]}).encode(),
    )  # fmt: skip
    for backend in ("primary", "fallback"):
        source = ReplaySource(tmp_path, provider="openai", backend=backend)
        found = source.answer(request)
        assert found is not None and len(source.matcher) == 1
        assert json.loads(b"".join(p for p in found[1].parts() if isinstance(p, bytes))) == {
            "answer": backend
        }
    assert len(ReplaySource(tmp_path, provider="openai", backend="gpt").matcher) == 2
    assert len(ReplaySource(tmp_path).matcher) == 3  # the stand-alone mock serves them all
    with pytest.raises(CassetteError, match=r"no exchange recorded for provider 'gemini'"):
        ReplaySource(tmp_path, provider="gemini", backend="g")
