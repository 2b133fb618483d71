"""The mock backend over a real uvicorn server, driven by the official SDKs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import anyio
import httpx
import openai
import pytest

from aichaos.exchange.asgi import send_reply
from aichaos.mock import MockBackend, MockConfig, create_app
from aichaos.providers import resolve
from aichaos.wire.asgi import read_request
from aichaos.wire.exchange import Abort, Hang, Pause, Reply, RequestInfo
from servers import serve

CLAUDE = "claude-sonnet-4-6"
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(create_app(MockConfig(seed=7))) as base:
        yield base


@pytest.fixture
def oai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def claude(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)


def chat(client: openai.OpenAI, prompt: str, **kw: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], **kw
    )


# --- OpenAI chat ------------------------------------------------------------------
def test_chat_deterministic(oai: openai.OpenAI) -> None:
    first = chat(oai, "What is 2+2?")
    again = chat(oai, "What is 2+2?")
    other = chat(oai, "Tell me a story")
    assert first.choices[0].message.content
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None
    assert first.usage.prompt_tokens == 3
    assert first.usage.completion_tokens == len(first.choices[0].message.content.split())


def test_seed_changes_text() -> None:
    def text(seed: int) -> str:
        req = RequestInfo(
            "POST",
            "http://m/v1/chat/completions",
            "m",
            "/v1/chat/completions",
            "",
            {},
            json.dumps(
                {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
        )
        reply = MockBackend(MockConfig(seed=seed)).handle(req)
        body = b"".join(p for p in reply.parts() if isinstance(p, bytes))
        return str(json.loads(body)["choices"][0]["message"]["content"])

    assert text(1) == text(1)
    assert text(1) != text(2)


def test_chat_stream_matches_non_stream(oai: openai.OpenAI) -> None:
    full = chat(oai, "stream me").choices[0].message.content
    chunks = list(chat(oai, "stream me", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_chat_stream_include_usage(oai: openai.OpenAI) -> None:
    chunks = list(chat(oai, "usage please", stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_chat_max_tokens_gives_length(oai: openai.OpenAI) -> None:
    reply = chat(oai, "long answer", max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert len((reply.choices[0].message.content or "").split()) == 3


def test_chat_tools(oai: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    reply = chat(oai, "weather?", tools=tools)
    assert reply.choices[0].finish_reason == "tool_calls"
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] == "celsius"

    with oai.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "weather?"}], tools=tools
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert json.loads(streamed.function.arguments) == args

    answered = oai.chat.completions.create(
        model="gpt-4o",
        tools=tools,
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert answered.choices[0].finish_reason == "stop" and answered.choices[0].message.content


def test_chat_json_mode(oai: openai.OpenAI) -> None:
    reply = chat(oai, "json", response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)
    schema = {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
    }
    reply = chat(oai, "json", response_format={"type": "json_schema", "json_schema": schema})
    value = json.loads(reply.choices[0].message.content or "")
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


# --- OpenAI responses, embeddings, models ---------------------------------------
def test_responses(oai: openai.OpenAI) -> None:
    reply = oai.responses.create(model="gpt-4.1", input="Hello there")
    assert reply.output_text and reply.status == "completed"
    assert reply.usage is not None and reply.usage.output_tokens > 0
    with oai.responses.stream(model="gpt-4.1", input="Hello there") as stream:
        final = stream.get_final_response()
    assert final.output_text == reply.output_text
    events = list(oai.responses.create(model="gpt-4.1", input="Hello there", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    short = oai.responses.create(model="gpt-4.1", input="Hello there", max_output_tokens=2)
    assert short.status == "incomplete"
    assert short.incomplete_details is not None
    assert short.incomplete_details.reason == "max_output_tokens"


def test_responses_tools(oai: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
    reply = oai.responses.create(model="gpt-4.1", input="weather?", tools=tools)
    call = reply.output[0]
    assert call.type == "function_call"
    assert set(json.loads(call.arguments)) == {"city", "unit"}


def test_embeddings(oai: openai.OpenAI) -> None:
    default = oai.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    floats = oai.embeddings.create(
        model="text-embedding-3-small", input=["a b", "c"], encoding_format="float"
    )
    assert len(default.data) == 2 and len(default.data[0].embedding) == 1536
    assert default.data[0].embedding == floats.data[0].embedding
    assert default.data[0].embedding != default.data[1].embedding
    assert default.usage.prompt_tokens == 3
    small = oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=8)
    assert len(small.data[0].embedding) == 8
    assert abs(sum(v * v for v in small.data[0].embedding) - 1) < 1e-5


def test_models(oai: openai.OpenAI) -> None:
    assert "gpt-4o" in [m.id for m in oai.models.list()]


def test_unknown_path(url: str) -> None:
    reply = httpx.post(url + "/v1/nope", json={})
    assert reply.status_code == 404
    assert reply.json()["error"]["message"] == "Invalid URL (POST /v1/nope)"
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(base_url=url + "/v2", api_key="x", max_retries=0).models.list()


def test_azure_deployment_path(url: str) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=url, api_key="x", api_version="2024-10-21", max_retries=0
    )
    reply = client.chat.completions.create(
        model="gpt4o-deploy", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="gpt4o-deploy", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content


# --- Anthropic ----------------------------------------------------------------------
def test_anthropic_messages(claude: anthropic.Anthropic) -> None:
    def ask(prompt: str) -> Any:
        return claude.messages.create(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": prompt}]
        )

    first, again, other = ask("Hi there"), ask("Hi there"), ask("Something else")
    assert first.content[0].text == again.content[0].text != other.content[0].text
    assert first.stop_reason == "end_turn"
    assert first.usage.input_tokens == 2 and first.usage.output_tokens > 0

    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Hi there"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == first.content[0].text
    assert final.usage.output_tokens == first.usage.output_tokens

    short = claude.messages.create(
        model=CLAUDE, max_tokens=2, messages=[{"role": "user", "content": "Hi there"}]
    )
    assert short.stop_reason == "max_tokens"
    raw = list(
        claude.messages.create(
            model=CLAUDE,
            max_tokens=100,
            stream=True,
            messages=[{"role": "user", "content": "Hi"}],
        )
    )
    assert raw[0].type == "message_start" and raw[-1].type == "message_stop"


def test_anthropic_tools(claude: anthropic.Anthropic) -> None:
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER}]
    reply = claude.messages.create(
        model=CLAUDE, max_tokens=100, tools=tools, messages=[{"role": "user", "content": "w?"}]
    )
    block = reply.content[0]
    assert reply.stop_reason == "tool_use" and block.type == "tool_use"
    assert set(block.input) == {"city", "unit"}
    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, tools=tools, messages=[{"role": "user", "content": "w?"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == block.input
    followed = claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        tools=tools,
        messages=[
            {"role": "user", "content": "w?"},
            {"role": "assistant", "content": [block.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sun"}],
            },
        ],
    )
    assert followed.stop_reason == "end_turn"


# --- Gemini -------------------------------------------------------------------------
GEMINI = "/v1beta/models/gemini-2.5-flash"


def gemini_body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], **extra}


def test_gemini(url: str) -> None:
    reply = httpx.post(url + GEMINI + ":generateContent", json=gemini_body("hello"))
    assert reply.status_code == 200
    body = reply.json()
    text = body["candidates"][0]["content"]["parts"][0]["text"]
    assert text and body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"]["promptTokenCount"] == 1

    with httpx.stream(
        "POST", url + GEMINI + ":streamGenerateContent?alt=sse", json=gemini_body("hello")
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(line[6:]) for line in lines]
    streamed = "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )
    assert streamed == text
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0

    array = httpx.post(url + GEMINI + ":streamGenerateContent", json=gemini_body("hello"))
    assert array.json()[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_tools(url: str) -> None:
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}]
    body = httpx.post(
        url + "/v1/models/gemini-2.5-flash:generateContent",
        json=gemini_body("w?", tools=tools),
    ).json()
    call = body["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call["name"] == "get_weather" and set(call["args"]) == {"city", "unit"}


# --- pacing -------------------------------------------------------------------------
def timed_stream(base: str, prompt: str) -> tuple[float, float]:
    """(time to first content chunk, total time) of a chat stream."""
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    start = time.perf_counter()
    first = None
    for chunk in chat(client, prompt, stream=True, max_tokens=10):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


def test_pacing() -> None:
    with serve(create_app(MockConfig(ttft=0.2, tokens_per_second=50))) as base:
        ttft, total = timed_stream(base, "pace me")
    assert ttft >= 0.2
    assert total >= 0.2 + 9 / 50 * 0.9  # ten words, nine gaps
    unpaced = MockConfig()  # pacing is opt-in: no waits unless configured
    assert (unpaced.latency, unpaced.ttft, unpaced.tokens_per_second) == (0.0, 0.0, None)


def test_header_latency() -> None:
    with serve(create_app(MockConfig(latency=0.2))) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        start = time.perf_counter()
        client.models.list()
        assert time.perf_counter() - start >= 0.2


# --- ASGI driver --------------------------------------------------------------------
def test_send_reply_parts() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append((time.perf_counter(), message))

    async def main() -> None:
        reply = Reply(200, [("x-a", "1")], [b"one", Pause(0.05), b"two"])
        await send_reply(reply, send)

    anyio.run(main)
    assert sent[0][1]["type"] == "http.response.start" and sent[0][1]["headers"] == [(b"x-a", b"1")]
    bodies = [m["body"] for _, m in sent[1:]]
    assert bodies == [b"one", b"two", b""]
    assert sent[2][0] - sent[1][0] >= 0.04

    async def aborting() -> None:
        await send_reply(Reply(200, [], [b"x", Abort()]), send)

    with pytest.raises(ConnectionAbortedError):
        anyio.run(aborting)

    async def hanging() -> None:
        await send_reply(Reply(200, [], [Hang(limit=0.01)]), send)

    with pytest.raises(ConnectionAbortedError):
        anyio.run(hanging)

    async def never() -> Any:
        await anyio.sleep_forever()

    async def aborting_watched() -> None:
        await send_reply(Reply(200, [], [b"x", Abort()]), send, receive=never)

    with pytest.raises(ConnectionAbortedError):  # not wrapped in an ExceptionGroup
        anyio.run(aborting_watched)


def test_read_request() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"a=1",
        "headers": [(b"Host", b"api.anthropic.com"), (b"X-Api-Key", b"k")],
    }
    messages = [
        {"type": "http.request", "body": b'{"mo', "more_body": True},
        {"type": "http.request", "body": b'del":"m"}', "more_body": False},
    ]

    async def receive() -> Any:
        return messages.pop(0)

    req = anyio.run(lambda: read_request(scope, receive, backend="claude"))
    assert req.host == "api.anthropic.com" and req.headers["x-api-key"] == "k"
    assert req.url == "http://api.anthropic.com/v1/messages?a=1"
    assert req.model == "m" and req.backend == "claude" and req.query == "a=1"


def test_tool_choice_and_tool_results(url: str) -> None:
    two = [
        {"functionDeclarations": [{"name": "first", "parameters": WEATHER}]},
        {"functionDeclarations": [{"name": "second", "parameters": {"type": "object"}}]},
    ]
    forced = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["second"]}}
    body = httpx.post(
        url + GEMINI + ":generateContent",
        json=gemini_body("w?", tools=two, toolConfig=forced),
    ).json()
    assert body["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "second"
    answered = httpx.post(
        url + GEMINI + ":generateContent",
        json={
            "tools": two,
            "contents": [
                {"role": "user", "parts": [{"text": "w?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "first", "args": {}}}]},
                {
                    "role": "function",
                    "parts": [{"functionResponse": {"name": "first", "response": {"ok": 1}}}],
                },
            ],
        },
    ).json()
    assert answered["candidates"][0]["content"]["parts"][0]["text"]


# --- provider errors as the SDKs see them --------------------------------------------
class ErrorApp:
    """Answers every request with `make(provider, req)` (to check error shapes end to end)."""

    def __init__(self, make: Any) -> None:
        self.make = make

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        req = await read_request(scope, receive)
        found = resolve(req.method, req.path)
        assert found is not None
        await send_reply(self.make(found[0], req), send)


def test_sdks_read_provider_errors() -> None:
    def make(provider: Any, req: RequestInfo) -> Reply:
        if req.headers.get("x-kind") == "quota":
            return provider.quota_exhausted(req)  # type: ignore[no-any-return]
        if req.headers.get("x-kind") == "outage":
            return provider.outage(req)  # type: ignore[no-any-return]
        return provider.rate_limited(req, scope="tokens", retry_after=0.01, limit=100)  # type: ignore[no-any-return]

    with serve(ErrorApp(make)) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.RateLimitError) as limited:
            chat(client, "hi")
        assert limited.value.code == "rate_limit_exceeded" and limited.value.type == "tokens"
        assert limited.value.request_id and limited.value.request_id.startswith("req_")
        with pytest.raises(openai.RateLimitError) as quota:
            chat(client.with_options(default_headers={"x-kind": "quota"}), "hi")
        assert quota.value.code == "insufficient_quota"
        with pytest.raises(openai.InternalServerError):
            chat(client.with_options(default_headers={"x-kind": "outage"}), "hi")

        claude = anthropic.Anthropic(base_url=base, api_key="x", max_retries=0)

        def ask(kind: str) -> Any:
            return claude.with_options(default_headers={"x-kind": kind}).messages.create(
                model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )

        with pytest.raises(anthropic.RateLimitError) as rl:
            ask("rate")
        assert rl.value.request_id and rl.value.request_id.startswith("req_")
        with pytest.raises(anthropic.OverloadedError):
            ask("outage")
        with pytest.raises(anthropic.EnforcedSpendLimitReachedError, match="monthly"):
            ask("quota")


def test_a_repeated_request_gets_the_same_answer_with_new_ids() -> None:
    """The backend remembers a request's completion: the answer is the same, its ids and the
    request it answers are not mixed up with another path's or body's."""
    backend = MockBackend(MockConfig(seed=3))
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})

    def ask(path: str, data: str = body) -> tuple[dict[str, Any], str | None]:
        req = RequestInfo("POST", f"http://m{path}", "m", path, "", {}, data.encode())
        reply = backend.handle(req)
        return json.loads(b"".join(p for p in reply.body if isinstance(p, bytes))), reply.header(
            "x-request-id"
        )

    first, first_id = ask("/v1/chat/completions")
    again, again_id = ask("/v1/chat/completions")
    assert again["choices"] == first["choices"] and again["usage"] == first["usage"]
    assert again["id"] != first["id"] and again_id != first_id
    other, _ = ask("/v1/responses")  # the same body on another path: that dialect's answer
    assert other["object"] == "response"
    longer, _ = ask("/v1/chat/completions", body.replace('"hi"', '"hi there"'))
    assert longer["usage"]["prompt_tokens"] == first["usage"]["prompt_tokens"] + 1
    streamed = body.replace('"model"', '"stream": true, "model"')
    path = "/v1/chat/completions"
    req = RequestInfo("POST", f"http://m{path}", "m", path, "", {}, streamed.encode())
    assert str(backend.handle(req).header("content-type")).startswith("text/event-stream")


LONE_SURROGATE = "lone \ud800 x"  # valid JSON ("\ud800"), not encodable as UTF-8


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user"}]}),
        (
            "/v1/chat/completions",
            {"model": "gpt-4o", "stream": True, "messages": [{"role": "user"}]},
        ),
        (
            "/v1/messages",
            {"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": [{"role": "user"}]},
        ),
        ("/v1/responses", {"model": "gpt-4o", "input": None}),
        ("/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{}]}]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": None}),
    ],
)
def test_a_lone_surrogate_in_the_prompt_is_answered(path: str, body: dict[str, Any]) -> None:
    """JSON may carry "\\ud800"; the mock hashed the prompt as UTF-8 and answered a plain-text
    500 (over HTTP) or raised UnicodeEncodeError into the app (in-process)."""
    text = json.dumps(body)
    for empty in ('{"role": "user"}', '"input": null', "[{}]"):
        filled = {
            '{"role": "user"}': '{"role": "user", "content": "PROMPT"}',
            '"input": null': '"input": "PROMPT"',
            "[{}]": '[{"text": "PROMPT"}]',
        }[empty]
        text = text.replace(empty, filled)
    raw = text.replace("PROMPT", json.dumps(LONE_SURROGATE)[1:-1]).encode()
    assert b"\\ud800" in raw
    with serve(create_app()) as base:
        answer = httpx.post(base + path, content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    if body.get("stream"):
        assert answer.text.rstrip().endswith("data: [DONE]")
    else:
        assert answer.json()
