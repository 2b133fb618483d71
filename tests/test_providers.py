"""Provider wire shapes: errors, headers, finish mapping, stream classification, edits."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from aichaos.providers import PROVIDERS, get_provider, provider_names, resolve
from aichaos.providers._common import go_duration
from aichaos.providers.base import Completion, Dialect, EventRole, ToolCall, Usage
from aichaos.providers.provider import Provider
from aichaos.wire.exchange import Reply, RequestInfo
from aichaos.wire.sse import SSEEvent, SSEParser

PATHS = {
    "openai": "/v1/chat/completions",
    "azure": "/openai/deployments/gpt4o/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}


def request(path: str, body: dict[str, Any] | None = None, query: str = "") -> RequestInfo:
    return RequestInfo(
        method="POST",
        url=f"https://example.test{path}",
        host="example.test",
        path=path,
        query=query,
        headers={},
        body=json.dumps(body or {"model": "gpt-4o"}).encode(),
    )


def body_of(reply: Reply) -> Any:
    return json.loads(b"".join(p for p in reply.parts() if isinstance(p, bytes)))


def completion(finish: str = "stop", tools: bool = False) -> Completion:
    calls = [ToolCall("call_1", "get_weather", '{"city":"Paris"}')] if tools else []
    return Completion(
        model="m",
        text="" if tools else "Hello there world",
        finish=finish,  # type: ignore[arg-type]
        tool_calls=calls,
        usage=Usage(5, 3),
    )


def dialects() -> list[tuple[str, Dialect]]:
    out = []
    for name in ("openai", "azure", "anthropic", "gemini"):
        for dialect in PROVIDERS[name].dialects:
            if dialect.has_completion:
                out.append((name, dialect))
    return out


DIALECTS = dialects()
DIALECT_IDS = [f"{p}-{d.name}" for p, d in DIALECTS]


def path_for(provider: str, dialect: Dialect) -> str:
    return "/v1/responses" if dialect.name == "responses" else PATHS[provider]


# --- registry -------------------------------------------------------------------
def test_registry() -> None:
    assert provider_names() == ["openai", "azure", "anthropic", "gemini"]
    assert get_provider("anthropic").default_host == "api.anthropic.com"
    with pytest.raises(KeyError, match="known providers: openai"):
        get_provider("nope")


@pytest.mark.parametrize(
    ("method", "path", "provider", "dialect"),
    [
        ("POST", "/v1/chat/completions", "openai", "chat_completions"),
        ("POST", "/v1/responses", "openai", "responses"),
        ("POST", "/v1/embeddings", "openai", "embeddings"),
        ("GET", "/v1/models", "openai", "models"),
        ("POST", "/openai/deployments/d/chat/completions", "azure", "chat_completions"),
        ("POST", "/openai/deployments/d/embeddings", "azure", "embeddings"),
        ("POST", "/v1/messages", "anthropic", "messages"),
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", "gemini", "generate_content"),
        ("POST", "/v1/models/gemini-2.5-flash:streamGenerateContent", "gemini", "generate_content"),
    ],
)
def test_resolve(method: str, path: str, provider: str, dialect: str) -> None:
    found = resolve(method, path)
    assert found is not None
    assert (found[0].name, found[1].name) == (provider, dialect)


def test_resolve_unknown() -> None:
    assert resolve("POST", "/v2/whatever") is None
    assert resolve("GET", "/v1/chat/completions") is None


# --- header formats -------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.012, "12ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3723, "1h2m3s"), (0, "0s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_openai_headers() -> None:
    headers = dict(get_provider("openai").response_headers(request("/v1/chat/completions")))
    assert re.fullmatch(r"req_[0-9a-f]+", headers["x-request-id"])
    assert headers["openai-version"] == "2020-10-01"
    assert int(headers["openai-processing-ms"]) >= 0
    assert re.fullmatch(r"[0-9.]+(ms|s)", headers["x-ratelimit-reset-requests"])
    assert "x-should-retry" not in headers


def test_anthropic_rate_limit_headers() -> None:
    headers = dict(
        get_provider("anthropic").rate_limit_headers(
            scope="tokens", limit=100, remaining=0, reset_seconds=30
        )
    )
    assert headers["anthropic-ratelimit-tokens-limit"] == "100"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", headers["anthropic-ratelimit-tokens-reset"]
    )


# --- errors ---------------------------------------------------------------------
def test_openai_errors() -> None:
    p = get_provider("openai")
    req = request(PATHS["openai"], {"model": "gpt-x"})
    outage = p.outage(req)
    assert outage.status == 500
    assert body_of(outage)["error"]["type"] == "server_error"
    assert p.outage(req, 503).status == 503

    limited = p.rate_limited(req, scope="tokens", retry_after=2, limit=30000)
    err = body_of(limited)["error"]
    assert limited.status == 429
    assert (err["type"], err["code"]) == ("tokens", "rate_limit_exceeded")
    assert "Rate limit reached for gpt-x" in err["message"]
    assert limited.header("retry-after") == "2"
    assert limited.header("retry-after-ms") is None  # api.openai.com sends none; Azure does
    assert limited.header("x-ratelimit-remaining-tokens") == "0"
    half = p.rate_limited(req, scope="requests", retry_after=1.5, limit=10)
    assert half.header("retry-after") == "1.5"  # the openai SDK reads decimal seconds
    assert half.header("retry-after-ms") is None
    assert body_of(half)["error"]["type"] == "requests"
    assert (
        p.rate_limited(req, scope="requests", retry_after=None, limit=10).header("retry-after")
        is None
    )

    quota = p.quota_exhausted(req)
    assert quota.status == 429
    assert set(body_of(quota)["error"]) == {"message", "type", "param", "code"}
    assert body_of(quota)["error"]["code"] == "insufficient_quota"
    assert body_of(quota)["error"]["type"] == "insufficient_quota"
    assert quota.header("retry-after") is None
    assert quota.header("x-should-retry") is None

    ctx = body_of(p.context_length(req, limit=8192, tokens=9000))["error"]
    assert (ctx["code"], ctx["param"]) == ("context_length_exceeded", "messages")
    assert "8192" in ctx["message"] and "9000" in ctx["message"]
    auth = p.auth_error(req)
    assert auth.status == 401 and body_of(auth)["error"]["code"] == "invalid_api_key"
    missing = p.model_not_found(req)
    assert missing.status == 404 and "`gpt-x`" in body_of(missing)["error"]["message"]
    assert body_of(missing)["error"]["code"] == "model_not_found"
    custom = p.error(req, 418, type="teapot", code="short", message="stout")
    assert body_of(custom) == {
        "error": {"message": "stout", "type": "teapot", "param": None, "code": "short"}
    }
    assert custom.header("x-request-id")


def test_openai_stream_errors() -> None:
    p = get_provider("openai")
    chat = p.stream_error_event(request(PATHS["openai"]), type="server_error", message="boom")
    assert chat.event is None and chat.json["error"]["message"] == "boom"
    resp = p.stream_error_event(request("/v1/responses"), type="server_error", message="boom")
    assert resp.event == "error" and resp.json["type"] == "error"


def test_azure_errors() -> None:
    p = get_provider("azure")
    req = request(PATHS["azure"], query="api-version=2024-10-21")
    limited = p.rate_limited(req, scope="tokens", retry_after=6, limit=1000)
    body = body_of(limited)
    assert limited.status == 429
    assert body["error"]["code"] == "429"
    assert "Please retry after 6 seconds" in body["error"]["message"]
    assert "2024-10-21" in body["error"]["message"]
    assert limited.header("retry-after") == "6"
    assert limited.header("retry-after-ms") == "6000"
    short = p.rate_limited(req, scope="tokens", retry_after=0.25, limit=1000)
    assert short.header("retry-after") == "1"  # whole seconds, rounded up
    assert short.header("retry-after-ms") == "250"  # the exact wait, read first by the SDK
    assert "Please retry after 1 seconds" in body_of(short)["error"]["message"]
    quota = p.quota_exhausted(req)
    assert quota.status == 429 and float(quota.header("retry-after") or 0) > 120
    filtered = p.content_filter_error(req)
    assert filtered is not None and filtered.status == 400
    inner = body_of(filtered)["error"]
    assert inner["code"] == "content_filter"
    assert inner["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert get_provider("openai").content_filter_error(req) is None


# `req_011C` and 20 base58 characters, as in public error reports (req_011CZuRovTW47JsNutG73SAU)
ANTHROPIC_REQUEST_ID = r"req_011C[1-9A-HJ-NP-Za-km-z]{20}"


def test_anthropic_errors() -> None:
    p = get_provider("anthropic")
    req = request(PATHS["anthropic"], {"model": "claude-x"})
    outage = p.outage(req)
    body = body_of(outage)
    assert outage.status == 529
    assert body["type"] == "error"
    assert body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert body["request_id"] == outage.header("request-id")
    assert body_of(p.outage(req, 500))["error"]["type"] == "api_error"
    limited = p.rate_limited(req, scope="requests", retry_after=3, limit=50)
    assert limited.status == 429 and limited.header("retry-after") == "3"
    assert limited.header("retry-after-ms") is None  # Anthropic sends whole seconds only
    for wait, sent in ((0.2, "1"), (1.0, "1"), (1.001, "2"), (2.5, "3"), (0.0001, "1")):
        rounded = p.rate_limited(req, scope="requests", retry_after=wait, limit=50)
        assert rounded.header("retry-after") == sent, wait  # whole seconds, rounded up
        assert p.retry_after_headers(wait) == [("retry-after", sent)]
    assert body_of(limited)["error"]["type"] == "rate_limit_error"
    assert limited.header("anthropic-ratelimit-requests-remaining") == "0"
    spend = p.quota_exhausted(req)
    assert spend.status == 429 and spend.header("retry-after") is None
    assert body_of(spend)["error"]["details"] == {"error_code": "enforced_spend_limit_reached"}
    credit = p.quota_exhausted(req, "credit_balance")
    assert credit.status == 400
    assert "credit balance is too low" in body_of(credit)["error"]["message"]
    ctx = body_of(p.context_length(req, limit=200000, tokens=210000))["error"]
    assert ctx == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 210000 tokens > 200000 maximum",
    }
    assert body_of(p.auth_error(req))["error"]["type"] == "authentication_error"
    assert body_of(p.model_not_found(req))["error"]["message"] == "model: claude-x"
    # In a stream: `details` null first and the stream's own request id, as production sends it.
    stream_id = "req_011CSoQiKNJjFPYGZGMask1g"
    event = p.stream_error_event(
        req, type="overloaded_error", message="Overloaded", headers=[("Request-Id", stream_id)]
    )
    assert event.event == "error"
    assert event.json == {
        "type": "error",
        "error": {"details": None, "type": "overloaded_error", "message": "Overloaded"},
        "request_id": stream_id,
    }
    assert event.encode() == (
        b'event: error\ndata: {"type":"error","error":{"details":null,"type":"overloaded_error",'
        b'"message":"Overloaded"},"request_id":"req_011CSoQiKNJjFPYGZGMask1g"}\n\n'
    )
    own = p.stream_error_event(req, type="overloaded_error", message="Overloaded").json
    assert re.fullmatch(ANTHROPIC_REQUEST_ID, own["request_id"])
    assert re.fullmatch(ANTHROPIC_REQUEST_ID, outage.header("request-id") or "")


def test_gemini_errors() -> None:
    p = get_provider("gemini")
    req = request(PATHS["gemini"], {"contents": []})
    outage = body_of(p.outage(req))["error"]
    assert outage == {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
    limited = p.rate_limited(req, scope="requests", retry_after=26, limit=10)
    err = body_of(limited)["error"]
    assert limited.status == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    retry = [d for d in err["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}]
    quota = body_of(p.quota_exhausted(req))["error"]
    assert not [d for d in quota["details"] if d["@type"].endswith("RetryInfo")]
    auth = p.auth_error(req)
    assert auth.status == 400
    assert body_of(auth)["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    missing = p.model_not_found(req)
    assert missing.status == 404 and body_of(missing)["error"]["status"] == "NOT_FOUND"
    ctx = p.context_length(req, limit=10, tokens=20)
    assert ctx.status == 400 and body_of(ctx)["error"]["status"] == "INVALID_ARGUMENT"
    event = p.stream_error_event(req, type="UNAVAILABLE", message="x")
    assert event.json == {"error": {"code": 503, "message": "x", "status": "UNAVAILABLE"}}


@pytest.mark.parametrize("name", ["openai", "azure", "anthropic", "gemini"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 502, 503, 504, 529])
def test_error_any_status_is_json(name: str, status: int) -> None:
    reply = get_provider(name).error(request(PATHS[name]), status)
    assert reply.status == status
    assert reply.header("content-type") == "application/json"
    assert isinstance(body_of(reply), dict)


# --- finish mapping -------------------------------------------------------------
FINISH_WORDS = {
    "chat_completions": {
        "stop": "stop",
        "length": "length",
        "content_filter": "content_filter",
        "tool_calls": "tool_calls",
    },
    "messages": {
        "stop": "end_turn",
        "length": "max_tokens",
        "content_filter": "refusal",
        "tool_calls": "tool_use",
    },
    "generate_content": {
        "stop": "STOP",
        "length": "MAX_TOKENS",
        "content_filter": "SAFETY",
        "tool_calls": "STOP",
    },
}


def finish_word(dialect: Dialect, body: Any) -> Any:
    if dialect.name == "chat_completions":
        return body["choices"][0]["finish_reason"]
    if dialect.name == "messages":
        return body["stop_reason"]
    if dialect.name == "generate_content":
        return body["candidates"][0]["finishReason"]
    return (body["status"], (body["incomplete_details"] or {}).get("reason"))


@pytest.mark.parametrize(("provider", "dialect"), DIALECTS, ids=DIALECT_IDS)
@pytest.mark.parametrize("finish", ["stop", "length", "content_filter", "tool_calls"])
def test_finish_mapping(provider: str, dialect: Dialect, finish: str) -> None:
    req = request(path_for(provider, dialect))
    body = dialect.render(req, completion(finish, tools=finish == "tool_calls"))
    if dialect.name == "responses":
        expected: Any = {
            "stop": ("completed", None),
            "tool_calls": ("completed", None),
            "length": ("incomplete", "max_output_tokens"),
            "content_filter": ("incomplete", "content_filter"),
        }[finish]
    else:
        expected = FINISH_WORDS[dialect.name][finish]
    assert finish_word(dialect, body) == expected
    # with_finish gives the same answer, on a copy
    base = dialect.render(req, completion("stop"))
    snapshot = copy.deepcopy(base)
    assert finish_word(dialect, dialect.with_finish(base, finish)) == expected  # type: ignore[arg-type]
    assert base == snapshot


# --- body reading and edits -----------------------------------------------------
@pytest.mark.parametrize(("provider", "dialect"), DIALECTS, ids=DIALECT_IDS)
def test_body_edits_return_new_objects(provider: str, dialect: Dialect) -> None:
    req = request(path_for(provider, dialect))
    body = dialect.render(req, completion())
    snapshot = copy.deepcopy(body)
    assert dialect.text_of(body) == "Hello there world"
    assert dialect.usage_of_body(body) == Usage(5, 3)
    edited = dialect.with_text(body, "changed")
    assert dialect.text_of(edited) == "changed"
    calls = [ToolCall("call_9", "lookup", '{"q": 1}')]
    with_calls = dialect.with_tool_calls(body, calls)
    got = dialect.tool_calls_of(with_calls)
    assert [c.name for c in got] == ["lookup"]
    assert json.loads(got[0].arguments) == {"q": 1}
    assert body == snapshot

    tool_body = dialect.render(req, completion("tool_calls", tools=True))
    assert [c.name for c in dialect.tool_calls_of(tool_body)] == ["get_weather"]
    assert json.loads(dialect.tool_calls_of(tool_body)[0].arguments) == {"city": "Paris"}


# --- streams --------------------------------------------------------------------
def render_events(provider: str, dialect: Dialect, comp: Completion) -> list[SSEEvent]:
    req = request(
        path_for(provider, dialect), {"model": "m", "stream_options": {"include_usage": True}}
    )
    raw = b"".join(e.encode() for e in dialect.render_stream(req, comp))
    parser = SSEParser()
    events = parser.feed(raw)
    assert parser.flush() == b""
    return events


def tool_fragment(dialect: str, payload: Any) -> str:
    if dialect == "chat_completions":
        return str(payload["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"])
    if dialect == "messages":
        return str(payload["delta"]["partial_json"])
    return str(payload["delta"])


@pytest.mark.parametrize(("provider", "dialect"), DIALECTS, ids=DIALECT_IDS)
def test_stream_classification(provider: str, dialect: Dialect) -> None:
    events = render_events(provider, dialect, completion())
    roles = [dialect.classify(e) for e in events]
    text_events = [e for e, r in zip(events, roles, strict=True) if r is EventRole.TEXT]
    assert "".join(dialect.event_text(e) or "" for e in text_events) == "Hello there world"
    assert len(text_events) == 3
    assert roles.count(EventRole.FINISH) == 1
    if provider == "azure":  # Azure's prompt-annotation chunk (no choices) comes first
        assert roles[:2] == [EventRole.OTHER, EventRole.START]
    elif dialect.name != "generate_content":
        assert roles[0] is EventRole.START
    if dialect.name in ("chat_completions", "messages"):
        assert roles[-1] is EventRole.TERMINATOR
    else:
        assert roles[-1] is EventRole.FINISH
    usage = [dialect.usage_of_event(e) for e in events]
    assert Usage(5, 3) in usage

    tool_events = render_events(provider, dialect, completion("tool_calls", tools=True))
    tool_roles = [dialect.classify(e) for e in tool_events]
    assert tool_roles.count(EventRole.TOOL_START) == 1
    assert EventRole.TEXT not in tool_roles
    if dialect.name != "generate_content":
        args = "".join(
            tool_fragment(dialect.name, e.json)
            for e, r in zip(tool_events, tool_roles, strict=True)
            if r is EventRole.TOOL_ARGS
        )
        assert json.loads(args) == {"city": "Paris"}


@pytest.mark.parametrize(("provider", "dialect"), DIALECTS, ids=DIALECT_IDS)
def test_stream_end(provider: str, dialect: Dialect) -> None:
    """Only the provider's final event completes a stream; its in-stream error event is an
    error (OpenAI `[DONE]`, Anthropic `message_stop`, Responses `response.completed`, Gemini
    the chunk with `finishReason`)."""
    events = render_events(provider, dialect, completion())
    ends = [dialect.stream_end(e, dialect.classify(e)) for e in events]
    assert ends == [None] * (len(events) - 1) + ["complete"]
    req = request(path_for(provider, dialect))
    error = get_provider(provider).stream_error_event(req, type="server_error", message="boom")
    assert dialect.stream_end(error, dialect.classify(error)) == "error"


def test_chat_stream_usage_only_when_asked() -> None:
    p = get_provider("openai")
    dialect = p.dialects[0]
    req = request(PATHS["openai"], {"model": "m", "stream": True})
    events = list(dialect.render_stream(req, completion()))
    assert all("usage" not in e.json for e in events if isinstance(e.json, dict))
    assert events[-1].data == "[DONE]"
    first = events[0].json["choices"][0]["delta"]
    assert first == {"role": "assistant", "content": "", "refusal": None}
    assert events[-2].json["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    asked = list(
        dialect.render_stream(
            request(PATHS["openai"], {"stream_options": {"include_usage": True}}), completion()
        )
    )
    assert asked[-2].json["choices"] == [] and asked[-2].json["usage"]["total_tokens"] == 8
    assert all(e.json["usage"] is None for e in asked[:-2])


def test_responses_stream_order() -> None:
    dialect = get_provider("openai").dialects[1]
    events = list(dialect.render_stream(request("/v1/responses"), completion("length")))
    kinds = [e.event for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert [e.json["sequence_number"] for e in events] == list(range(len(events)))
    assert all(e.json["type"] == e.event for e in events)
    final = events[-1].json["response"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    fixed = dialect.event_with_finish(events[-1], "stop")
    assert fixed.event == "response.completed" and fixed.json["response"]["status"] == "completed"
    assert events[-1].json["response"]["status"] == "incomplete"


@pytest.mark.parametrize(("provider", "dialect"), DIALECTS, ids=DIALECT_IDS)
def test_event_edits_return_new_events(provider: str, dialect: Dialect) -> None:
    events = render_events(provider, dialect, completion())
    for event in events:
        raw, data = event.raw, event.data
        role = dialect.classify(event)
        if role is EventRole.TEXT:
            edited = dialect.event_with_text(event, "XYZ")
            assert dialect.event_text(edited) == "XYZ"
            assert dialect.classify(edited) is EventRole.TEXT
        if role is EventRole.FINISH:
            edited = dialect.event_with_finish(event, "length")
            assert dialect.classify(edited) is EventRole.FINISH
            words = ("length", "MAX_TOKENS", "max_tokens", "max_output_tokens")
            assert any(w in edited.data for w in words)
        assert (event.raw, event.data) == (raw, data)
    tool_events = render_events(provider, dialect, completion("tool_calls", tools=True))
    for event in tool_events:
        data = event.data
        role = dialect.classify(event)
        if role is EventRole.TOOL_START:
            renamed = dialect.event_with_tool_name(event, "other_tool")
            assert "other_tool" in renamed.data
        if role in (EventRole.TOOL_ARGS, EventRole.TOOL_START) and dialect.name in (
            "chat_completions",
            "generate_content",
        ):
            broken = dialect.event_with_tool_args(event, '{"bad')
            if dialect.name == "generate_content":
                # Gemini's `args` is an object: unparseable arguments never reach the wire.
                assert "functionCall" not in broken.data
            else:
                assert "bad" in broken.data
        assert event.data == data


def test_keepalives() -> None:
    anthropic = get_provider("anthropic").dialects[0].keepalive_event()
    assert anthropic.encode() == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert get_provider("openai").dialects[0].keepalive_event().comment_only


def test_providers_are_singletons() -> None:
    assert all(isinstance(p, Provider) for p in PROVIDERS.values())
    assert get_provider("openai") is get_provider("openai")


@pytest.mark.parametrize("azure", [False, True])
def test_chat_chunks_read_without_parsing_get_the_role_parsing_gives(azure: bool) -> None:
    """Text deltas are told apart from the other chunks without parsing their JSON; every
    chunk (text, role, tool calls, finish, usage, error, n=2) gets the role a parse gives."""
    from aichaos.providers.openai_chat import ChatCompletions

    dialect = ChatCompletions(azure=azure)
    body = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    req = RequestInfo(
        "POST", "http://x/v1/chat/completions", "x", "/v1/chat/completions", "", {}, b""
    )
    req.body = json.dumps(body).encode()
    call = ToolCall("call_1", "get_weather", '{"city": "Paris", "note": "\\"role\\": x"}')
    events = [
        *dialect.render_stream(req, Completion("gpt-4o", 'say "usage":{ or "error" ok')),
        *dialect.render_stream(req, Completion("gpt-4o", "", "tool_calls", [call])),
        SSEEvent.of({"error": {"message": "boom", "type": "server_error"}}),
        SSEEvent.of({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None},
                                 {"index": 1, "delta": {}, "finish_reason": "stop"}]}),
    ]  # fmt: skip
    roles = [dialect.classify(SSEEvent(data=event.data)) for event in events]
    parsed = [dialect.classify(SSEEvent(data=json.dumps(event.json))) if event.json else None
              for event in events]  # fmt: skip
    unparsed = [event.data for event, full in zip(events, parsed, strict=True) if full is None]
    assert unparsed == ["[DONE]"] * 2  # the terminators only: every other event is compared
    for event, role, full in zip(events, roles, parsed, strict=True):
        if full is not None:
            assert role == full, event.data
    assert roles.count(EventRole.TEXT) >= 5  # the text deltas (read without parsing)
