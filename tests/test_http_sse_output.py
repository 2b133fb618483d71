"""An http target that answers with SSE (issue 11 item 5): `output: {format: ...}` reads the
text by the provider's format, and a stream that did not finish is a failed call."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aichaos.experiment import ExperimentError, parse_experiment, run_experiment
from aichaos.experiment.run_result import RunResult
from aichaos.experiment.target_specs import OutputSpec
from aichaos.experiment.targets.answer_text import Answer, AnswerReader
from aichaos.mock.app import MockApp
from aichaos.mock.engine import MockConfig
from servers import serve
from sse_relay_app import app as relay_app
from sse_relay_app import upstream_request

TESTS = Path(__file__).parent
PROMPTS = ["Tell me about tides.", "Why is the sky blue?"]
SEED = 5


def run(url: str, provider: str, output: str, faults: str = "[]") -> RunResult:
    text = f"""
        version: 1
        backends: {{{provider}: {provider}}}
        target:
          http:
            url: {url}/
            json: {{provider: {provider}, base: "{{{{backends.{provider}.url}}}}",
                    prompt: "{{{{prompt}}}}"}}
            stream: true
            output: {output}
        load: {{requests: 2, concurrency: 1, prompts: {PROMPTS!r}, timeout: 10s}}
        phases: {{baseline: false, recovery: false}}
        mock: {{latency: 0ms, ttft: 2ms, tokens_per_second: 5000}}
        faults: {faults}
        hypothesis: [{{check: success_rate, min: 1.0}}, {{check: response, not_empty: true}}]
        """
    experiment = parse_experiment(textwrap.dedent(text), base_dir=TESTS)
    return anyio.run(functools.partial(run_experiment, experiment, SEED))


def expected_text(provider: str, prompt: str) -> str:
    """The mock's answer to the same prompt, asked without streaming, read by hand."""
    config = MockConfig(seed=SEED, latency=0.0, ttft=0.002, tokens_per_second=5000)

    async def ask() -> Any:
        transport = httpx.ASGITransport(MockApp(config))
        async with httpx.AsyncClient(transport=transport) as client:
            request = upstream_request(provider, "http://mock", prompt, stream=False)
            return (await client.post(**request)).json()

    body = anyio.run(ask)
    if provider == "openai":
        return str(body["choices"][0]["message"]["content"])
    if provider == "anthropic":
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    return "".join(p["text"] for p in body["candidates"][0]["content"]["parts"])


@pytest.fixture(scope="module")
def relay() -> Any:
    with serve(relay_app) as url:
        yield url


@pytest.mark.parametrize(
    ("provider", "output"),
    [
        ("openai", "{format: openai}"),
        ("anthropic", "{format: anthropic}"),
        ("gemini", "{format: gemini}"),
        ("openai", '{path: choices.0.delta.content, end: "[DONE]"}'),
    ],
)
def test_a_streamed_answer_is_read_by_its_format(relay: str, provider: str, output: str) -> None:
    result = run(relay, provider, output)
    assert [c.verdict for c in result.checks] == ["PASS", "PASS"], [
        (c.error, c.message) for c in result.calls
    ]
    for call in result.calls:
        assert call.output == expected_text(provider, call.prompt)
        assert "data:" not in call.output and call.ttft is not None
        assert [a.outcome for a in call.attempts] == ["complete"]


@pytest.mark.parametrize(
    ("provider", "mode", "error", "says"),
    [
        ("openai", "no_terminator", "stream_incomplete", "without its final event (data: [DONE])"),
        ("anthropic", "error_event", "stream_error_event", "sent an error event: "),
        ("gemini", "drop", "stream_incomplete", "(a chunk with finishReason)"),
    ],
)
def test_a_stream_that_did_not_finish_is_a_failed_call(
    relay: str, provider: str, mode: str, error: str, says: str
) -> None:
    fault = f"[{{backend: {provider}, kind: stream_cut, mode: {mode}, after: 2}}]"
    result = run(relay, provider, f"{{format: {provider}}}", fault)
    assert result.checks[0].verdict == "FAIL" and result.exit_code == 1
    for call in result.calls:
        assert (call.ok, call.status, call.error) == (False, 200, error)
        assert call.message is not None and says in call.message, call.message
        # the text that did arrive is kept, without framing
        assert call.output and expected_text(provider, call.prompt).startswith(call.output)


def test_a_stream_without_its_end_event_fails_with_path_and_end(relay: str) -> None:
    fault = "[{backend: openai, kind: stream_cut, mode: no_terminator, after: 2}]"
    result = run(relay, "openai", '{path: choices.0.delta.content, end: "[DONE]"}', fault)
    assert {(c.error, c.message) for c in result.calls} == {
        (
            "stream_incomplete",
            "the answer stream ended after 3 events without its final event (`[DONE]`)",
        )
    }


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("{format: cohere}", "format"),
        ("{format: openai, path: x}", "exactly one of `format` or `path`"),
        ("{end: x}", "exactly one of `format` or `path`"),
        ("{format: openai, end: x}", "`end` goes with `path`"),
    ],
)
def test_a_wrong_output_is_refused_with_its_place(output: str, says: str) -> None:
    with pytest.raises(ExperimentError) as caught:
        run("http://127.0.0.1:9", "openai", output)
    assert says in caught.value.format() and "target.http.output" in caught.value.format()


def test_openai_format_reads_a_responses_api_stream_too() -> None:
    """`format: openai` also reads the Responses API's events (`response.output_text.delta`)."""
    config = MockConfig(seed=SEED, latency=0.0, ttft=0.0, tokens_per_second=5000)
    body = {"model": "gpt-4o-mini", "input": "Why is the sky blue?"}

    async def ask() -> tuple[bytes, Any]:
        transport = httpx.ASGITransport(MockApp(config))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            streamed = await client.post("/v1/responses", json={**body, "stream": True})
            whole = await client.post("/v1/responses", json=body)
            return streamed.content, whole.json()

    streamed, whole = anyio.run(ask)
    reader = AnswerReader(OutputSpec(format="openai"))
    for start in range(0, len(streamed), 7):  # in small pieces, as a network delivers them
        reader.feed(streamed[start : start + 7])
    expected = "".join(part["text"] for item in whole["output"] for part in item.get("content", []))
    assert reader.finish() == Answer(expected) and expected
    cut = AnswerReader(OutputSpec(format="openai"))
    cut.feed(streamed[: streamed.index(b"response.completed")])
    answer = cut.finish()
    assert (answer.error, answer.message) == (
        "stream_incomplete",
        f"the answer stream ended after {cut.events} events without its final event"
        " (response.completed)",
    )
