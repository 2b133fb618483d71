"""Every fault kind against the real anthropic SDK (2.x), through `aichaos.inject()`.

Each test asserts what the SDK really does with the real failure (per the provider
reference): the exception class (2.x picks subclasses such as `OverloadedError` or
`ServiceUnavailableError`), status, `.type`, `.body` (the *whole* error JSON, unlike openai),
how many attempts the SDK makes with its default `max_retries=2`, and how long it waits.
The SDK only takes httpx2 clients; its default client is the one under test.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent

import aichaos
from aichaos.records import Attempt
from sdk_support import (
    ANTHROPIC_TOOLS,
    API_KEY,
    CASE_HEADER,
    CLAUDE,
    MESSAGES,
    SLACK,
    Outcome,
    SdkSleeps,
    assert_backoff,
    assert_retry_after,
    for_case,
    looks_scrambled,
    read_until_error,
    run_concurrently,
    words,
)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SdkSleeps:
    """The retry delays the SDK computes, by call id (it still sleeps them)."""
    return SdkSleeps().install(monkeypatch)


@pytest.fixture
def client() -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY) as sdk:
        yield sdk


def create(client: anthropic.Anthropic, **kw: Any) -> Any:
    return client.messages.create(
        model=CLAUDE,
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kw,
    )


def text_of_message(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def events_of(client: anthropic.Anthropic, **kw: Any) -> list[RawMessageStreamEvent]:
    return list(create(client, stream=True, **kw))


def text_of(events: list[RawMessageStreamEvent]) -> str:
    return "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )


def text_deltas(events: list[RawMessageStreamEvent]) -> list[str]:
    return [
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]


def stop_reasons(events: list[RawMessageStreamEvent]) -> list[str | None]:
    return [e.delta.stop_reason for e in events if e.type == "message_delta"]


def final_message(client: anthropic.Anthropic, **kw: Any) -> Message:
    """The message the SDK's stream helper accumulates from the events."""
    with client.messages.stream(
        model=CLAUDE,
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kw,
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


@pytest.fixture(scope="module")
def baseline() -> str:
    """The mock's answer to the prompt when no fault acts (deterministic for the seed)."""
    with aichaos.inject(), anthropic.Anthropic(api_key=API_KEY) as sdk:
        message = create(sdk)
    assert message.stop_reason == "end_turn"
    text = text_of_message(message)
    assert len(words(text)) >= 8
    return text


def assert_whole_error_body(exc: anthropic.APIStatusError, type_: str) -> None:
    """anthropic's `.body` is the whole JSON; `.type` (2.x) and `.request_id` come from it."""
    body = exc.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str)
    assert exc.type == type_
    assert body["request_id"] == exc.request_id == exc.response.headers["request-id"]
    assert exc.message == f"Error code: {exc.status_code} - {body}"


def test_plain_httpx_clients_are_rejected() -> None:
    """Why only httpx2 is tested here: anthropic >= 1 refuses a plain httpx.Client."""
    with httpx.Client() as plain, pytest.raises(TypeError):
        anthropic.Anthropic(api_key=API_KEY, http_client=plain)  # type: ignore[arg-type]


# --- errors the SDK does not retry --------------------------------------------------------

NOT_RETRIED = [
    ({"kind": "error", "status": 400}, anthropic.BadRequestError, "invalid_request_error", ""),
    ({"kind": "error", "status": 401}, anthropic.AuthenticationError, "authentication_error", ""),
    ({"kind": "error", "status": 402}, anthropic.PaymentRequiredError, "billing_error", ""),
    ({"kind": "error", "status": 403}, anthropic.PermissionDeniedError, "permission_error", ""),
    ({"kind": "error", "status": 404}, anthropic.NotFoundError, "not_found_error", ""),
    ({"kind": "error", "status": 413}, anthropic.ContentTooLargeError, "request_too_large", ""),
    (
        {"kind": "error", "status": 422},
        anthropic.UnprocessableEntityError,
        "invalid_request_error",
        "",
    ),
    (
        {"kind": "error", "status": 400, "type": "my_error", "message": "Mine."},
        anthropic.BadRequestError,
        "my_error",
        "Mine.",
    ),
    (
        {"kind": "context_length", "limit": 200000, "tokens": 210000},
        anthropic.BadRequestError,
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
    ),
    ({"kind": "auth_error"}, anthropic.AuthenticationError, "authentication_error", "x-api-key"),
    ({"kind": "model_not_found"}, anthropic.NotFoundError, "not_found_error", f"model: {CLAUDE}"),
    (
        {"kind": "quota_exhausted", "variant": "credit_balance"},  # a 400 no retry clears
        anthropic.BadRequestError,
        "invalid_request_error",
        "Your credit balance is too low",
    ),
]
NOT_RETRIED_IDS = [
    "error-400",
    "error-401",
    "error-402",
    "error-403",
    "error-404",
    "error-413",
    "error-422",
    "error-custom",
    "context_length",
    "auth_error",
    "model_not_found",
    "quota_exhausted-credit_balance",
]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(("fault", "cls", "type_", "message"), NOT_RETRIED, ids=NOT_RETRIED_IDS)
def test_error_is_not_retried(
    client: anthropic.Anthropic,
    fault: dict[str, Any],
    cls: type[anthropic.APIStatusError],
    type_: str,
    message: str,
    stream: bool,
) -> None:
    with aichaos.inject([fault]) as chaos, pytest.raises(anthropic.APIStatusError) as info:
        create(client, stream=stream)  # a stream's error status is raised by create() itself
    exc = info.value
    assert type(exc) is cls
    assert_whole_error_body(exc, type_)
    assert message in exc.body["error"]["message"]  # type: ignore[index]
    assert [a.status for a in chaos.attempts] == [exc.status_code]
    assert chaos.attempts[0].stream is stream


# --- retried errors and connection failures ---------------------------------------------
#
# Run side by side, one thread and call scope each (see the openai tests).


@dataclass(frozen=True)
class Case:
    fault: dict[str, Any]
    timeout: float | None = None
    stream: bool = False
    max_retries: int | None = None


RETRY_CASES: dict[str, Case] = {
    "rate_limit": Case({"kind": "rate_limit", "retry_after": 0.25}),
    "rate_limit-tokens": Case({"kind": "rate_limit", "scope": "tokens", "retry_after": 0.2}),
    "rate_limit-one-retry": Case({"kind": "rate_limit", "retry_after": 0.6}, max_retries=1),
    "error-500": Case({"kind": "error", "status": 500, "retry_after": 0.2}),
    "error-503-retry-after-ms-only": Case(
        {"kind": "error", "status": 503, "headers": {"retry-after-ms": "200"}}
    ),
    "error-504-retry-after-only": Case(
        {"kind": "error", "status": 504, "headers": {"retry-after": "0.2"}}
    ),
    "error-408": Case({"kind": "error", "status": 408, "retry_after": 0.2}),
    "error-409": Case({"kind": "error", "status": 409, "retry_after": 0.2}),
    "error-529": Case({"kind": "error", "status": 529, "retry_after": 0.2}),
    "rate_limit-clears": Case({"kind": "rate_limit", "first": 2, "retry_after": 0.2}),
    "rate_limit-clears-stream": Case(
        {"kind": "rate_limit", "first": 2, "retry_after": 0.2}, stream=True
    ),
    "outage": Case({"kind": "outage"}),
    "outage-500": Case({"kind": "outage", "status": 500}),
    "timeout": Case({"kind": "timeout"}, timeout=0.2),
    "server-hang": Case({"kind": "timeout", "hang": 0.1}, timeout=5),
    "reset": Case({"kind": "connection_reset"}),
    "reset-after-bytes": Case({"kind": "connection_reset", "after_bytes": 40}),
    "refused": Case({"kind": "connection_refused"}),
    "quota_exhausted": Case({"kind": "quota_exhausted"}),
}


@pytest.fixture(scope="module")
def retried() -> dict[str, Outcome]:
    """The outcome of every case in RETRY_CASES, with the SDK's default max_retries."""

    def call(sdk: anthropic.Anthropic, case: Case) -> Callable[[dict[str, str]], Any]:
        if case.timeout is not None:
            sdk = sdk.with_options(timeout=case.timeout)
        if case.max_retries is not None:
            sdk = sdk.with_options(max_retries=case.max_retries)

        def run(headers: dict[str, str]) -> Any:
            if case.stream:
                return text_of(events_of(sdk, extra_headers=headers))
            return text_of_message(create(sdk, extra_headers=headers))

        return run

    faults = [for_case(name, case.fault) for name, case in RETRY_CASES.items()]
    with (
        pytest.MonkeyPatch.context() as patch,
        anthropic.Anthropic(api_key=API_KEY) as sdk,
        aichaos.inject(faults),
    ):
        calls = {name: call(sdk, case) for name, case in RETRY_CASES.items()}
        return run_concurrently(calls, SdkSleeps().install(patch))


RETRIED_AFTER = [
    ("rate_limit", anthropic.RateLimitError, "rate_limit_error", 0.25),
    ("rate_limit-tokens", anthropic.RateLimitError, "rate_limit_error", 0.2),
    ("error-500", anthropic.InternalServerError, "api_error", 0.2),
    ("error-503-retry-after-ms-only", anthropic.ServiceUnavailableError, "api_error", 0.2),
    ("error-504-retry-after-only", anthropic.GatewayTimeoutError, "timeout_error", 0.2),
    ("error-408", anthropic.RequestTimeoutError, "invalid_request_error", 0.2),
    ("error-409", anthropic.ConflictError, "invalid_request_error", 0.2),
    ("error-529", anthropic.OverloadedError, "overloaded_error", 0.2),
]


@pytest.mark.parametrize(
    ("case", "cls", "type_", "wait"), RETRIED_AFTER, ids=[c[0] for c in RETRIED_AFTER]
)
def test_retried_after_retry_after(
    retried: dict[str, Outcome],
    case: str,
    cls: type[anthropic.APIStatusError],
    type_: str,
    wait: float,
) -> None:
    outcome = retried[case]
    exc = outcome.error
    assert isinstance(exc, anthropic.APIStatusError) and type(exc) is cls
    assert_whole_error_body(exc, type_)
    assert [a.status for a in outcome.attempts] == [exc.status_code] * 3  # max_retries=2
    assert {a.call_id for a in outcome.attempts} == {case}
    assert_retry_after(outcome.attempts, wait, outcome.sleeps)


def test_spend_limit_is_a_429_of_its_own_class_that_the_sdk_still_retries(
    retried: dict[str, Outcome],
) -> None:
    from anthropic.types.shared.enforced_spend_limit_reached_error import (
        EnforcedSpendLimitReachedError,
    )

    outcome = retried["quota_exhausted"]
    exc = outcome.error
    assert type(exc) is EnforcedSpendLimitReachedError
    assert isinstance(exc, anthropic.RateLimitError)  # apps catching 429s catch it too
    assert exc.body["error"]["details"] == {"error_code": "enforced_spend_limit_reached"}  # type: ignore[index]
    assert "retry-after" not in exc.response.headers  # waiting will not clear it
    assert [a.status for a in outcome.attempts] == [429] * 3  # status is all the SDK retries on


def test_retry_after_is_honoured_with_one_retry(retried: dict[str, Outcome]) -> None:
    outcome = retried["rate_limit-one-retry"]
    assert type(outcome.error) is anthropic.RateLimitError
    assert outcome.error.response.headers["retry-after"] == "0.6"
    assert [a.status for a in outcome.attempts] == [429, 429]
    assert_retry_after(outcome.attempts, 0.6, outcome.sleeps)  # not the backoff (<= 0.5 s)


@pytest.mark.parametrize("case", ["rate_limit-clears", "rate_limit-clears-stream"])
def test_rate_limit_clears_and_the_call_succeeds(
    retried: dict[str, Outcome], baseline: str, case: str
) -> None:
    outcome = retried[case]
    assert outcome.error is None
    assert outcome.result == baseline
    assert [a.status for a in outcome.attempts] == [429, 429, 200]
    assert [a.stream for a in outcome.attempts] == [case.endswith("stream")] * 3
    assert_retry_after(outcome.attempts, 0.2, outcome.sleeps)


@pytest.mark.parametrize(
    ("case", "cls", "status", "type_"),
    [
        ("outage", anthropic.OverloadedError, 529, "overloaded_error"),
        ("outage-500", anthropic.InternalServerError, 500, "api_error"),
    ],
    ids=["outage", "outage-500"],
)
def test_outage_is_retried_with_backoff(
    retried: dict[str, Outcome],
    case: str,
    cls: type[anthropic.APIStatusError],
    status: int,
    type_: str,
) -> None:
    outcome = retried[case]
    exc = outcome.error
    assert isinstance(exc, anthropic.APIStatusError) and type(exc) is cls
    assert exc.status_code == status
    assert_whole_error_body(exc, type_)
    assert "retry-after" not in exc.response.headers
    assert [a.status for a in outcome.attempts] == [status] * 3
    assert_backoff(outcome.attempts, outcome.sleeps)


def test_timeout_is_an_api_timeout_error_after_retries(retried: dict[str, Outcome]) -> None:
    outcome = retried["timeout"]
    assert type(outcome.error) is anthropic.APITimeoutError
    assert type(outcome.error.__cause__).__name__ == "ReadTimeout"
    assert type(outcome.error.__cause__).__module__.startswith("httpx2")
    assert [a.error for a in outcome.attempts] == ["httpx2.ReadTimeout"] * 3
    assert all(a.duration is not None and a.duration >= 0.2 - SLACK for a in outcome.attempts)
    assert_backoff(outcome.attempts, outcome.sleeps)


def test_server_giving_up_first_is_a_connection_error(retried: dict[str, Outcome]) -> None:
    outcome = retried["server-hang"]
    assert type(outcome.error) is anthropic.APIConnectionError
    assert [a.error for a in outcome.attempts] == ["httpx2.RemoteProtocolError"] * 3
    assert_backoff(outcome.attempts, outcome.sleeps)


@pytest.mark.parametrize(
    ("case", "error", "status"),
    [
        ("reset", "httpx2.RemoteProtocolError", None),
        ("reset-after-bytes", "httpx2.RemoteProtocolError", 200),
        ("refused", "httpx2.ConnectError", None),
    ],
    ids=["reset", "reset-after-bytes", "refused"],
)
def test_connection_failure_is_retried(
    retried: dict[str, Outcome], case: str, error: str, status: int | None
) -> None:
    outcome = retried[case]
    assert type(outcome.error) is anthropic.APIConnectionError
    cause = outcome.error.__cause__
    assert f"{type(cause).__module__.split('.')[0]}.{type(cause).__name__}" == error
    assert [a.status for a in outcome.attempts] == [status] * 3
    assert [a.error for a in outcome.attempts] == [error] * 3
    assert_backoff(outcome.attempts, outcome.sleeps)


class _SleepRecorder:
    """Stands in for the `time` module inside the SDK: records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_any_retry_after_is_slept(
    client: anthropic.Anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anthropic >= 1 sleeps whatever retry-after says (an hour, twice); openai would refuse."""
    recorder = _SleepRecorder()
    monkeypatch.setattr(anthropic._base_client, "time", recorder)
    with (
        aichaos.inject([{"kind": "rate_limit", "retry_after": 3600}]) as chaos,
        pytest.raises(anthropic.RateLimitError),
    ):
        create(client)
    assert recorder.sleeps == [3600.0, 3600.0]
    assert len(chaos.attempts) == 3


def test_rate_limit_headers(client: anthropic.Anthropic) -> None:
    fault = {"kind": "rate_limit", "retry_after": 2, "limit": 50}
    with aichaos.inject([fault]), pytest.raises(anthropic.RateLimitError) as info:
        create(client.with_options(max_retries=0))
    headers = info.value.response.headers
    assert headers["retry-after"] == "2"
    assert "retry-after-ms" not in headers  # Anthropic sends whole seconds only
    assert headers["anthropic-ratelimit-requests-limit"] == "50"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")  # RFC 3339
    assert "50 requests per minute" in info.value.body["error"]["message"]  # type: ignore[index]


# --- failures inside a started stream (never retried) ---------------------------------------


def test_reset_mid_stream_is_a_raw_transport_error(client: anthropic.Anthropic) -> None:
    import httpx2

    with aichaos.inject([{"kind": "connection_reset", "after_bytes": 900}]) as chaos:
        received, exc = read_until_error(create(client, stream=True))
    assert type(exc) is httpx2.RemoteProtocolError  # anthropic does not wrap mid-body errors
    assert received and received[0].type == "message_start"
    assert [a.status for a in chaos.attempts] == [200]


def test_stream_cut_drop(client: anthropic.Anthropic, baseline: str) -> None:
    import httpx2

    with aichaos.inject([{"kind": "stream_cut", "mode": "drop", "after": 3}]) as chaos:
        received, exc = read_until_error(create(client, stream=True))
        with pytest.raises(httpx2.RemoteProtocolError):
            final_message(client)
    assert type(exc) is httpx2.RemoteProtocolError
    assert text_of(received) == " ".join(words(baseline)[:3])
    assert not stop_reasons(received)
    assert [a.error for a in chaos.attempts] == ["httpx2.RemoteProtocolError"] * 2


@pytest.mark.parametrize("helper", [False, True], ids=["create", "messages.stream"])
def test_stream_cut_error_event(client: anthropic.Anthropic, helper: bool) -> None:
    fault = {"kind": "stream_cut", "mode": "error_event", "after": 3}
    exc: Exception
    received: list[Any] | None
    with aichaos.inject([fault]) as chaos:
        if helper:
            with pytest.raises(anthropic.APIStatusError) as info:
                final_message(client)
            exc, received = info.value, None
        else:
            received, exc = read_until_error(create(client, stream=True))
    # An in-stream error carries the stream's own status: a plain APIStatusError with 200.
    assert type(exc) is anthropic.APIStatusError
    assert exc.status_code == 200
    assert exc.type == "overloaded_error"
    assert exc.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    if received is not None:
        assert len(text_deltas(received)) == 3
    assert len(chaos.attempts) == 1  # never retried


def test_stream_cut_no_terminator(client: anthropic.Anthropic, baseline: str) -> None:
    fault = {"kind": "stream_cut", "mode": "no_terminator", "after": 3}
    with aichaos.inject([fault]) as chaos:
        events = events_of(client)
        message = final_message(client)
    assert text_of(events) == " ".join(words(baseline)[:3])
    assert [e.type for e in events if e.type in ("message_delta", "message_stop")] == []
    assert message.stop_reason is None  # no error: the partial message, unfinished
    assert text_of_message(message) == " ".join(words(baseline)[:3])
    assert len(chaos.attempts) == 2


def test_stream_stall(client: anthropic.Anthropic, baseline: str) -> None:
    with aichaos.inject([{"kind": "stream_stall", "after": 2, "stall": 0.3}]):
        stamps: list[float] = []
        events: list[RawMessageStreamEvent] = []
        for event in create(client, stream=True):
            events.append(event)
            if event.type == "content_block_delta":
                stamps.append(time.perf_counter())
    assert text_of(events) == baseline
    assert stop_reasons(events) == ["end_turn"]
    assert stamps[2] - stamps[1] >= 0.3 - SLACK


def test_stream_stall_beyond_the_read_timeout(client: anthropic.Anthropic) -> None:
    import httpx2

    with aichaos.inject([{"kind": "stream_stall", "after": 2, "stall": 0.6}]) as chaos:
        received, exc = read_until_error(create(client.with_options(timeout=0.25), stream=True))
    assert type(exc) is httpx2.ReadTimeout  # raw, like any mid-body failure
    assert len(text_deltas(received)) == 2
    assert [a.error for a in chaos.attempts] == ["httpx2.ReadTimeout"]


def test_stream_stall_pings_keep_the_stream_alive(
    client: anthropic.Anthropic, baseline: str
) -> None:
    fault = {"kind": "stream_stall", "after": 2, "stall": 0.35, "keepalive": 0.08}
    patient = client.with_options(timeout=0.2)  # shorter than the stall, longer than pings
    with aichaos.inject([fault]):
        events = events_of(patient)  # the SDK skips pings
        raw = patient.messages.with_streaming_response.create(
            model=CLAUDE,
            max_tokens=1024,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
        with raw as response:
            lines = list(response.iter_lines())
    assert text_of(events) == baseline
    assert "ping" not in {e.type for e in events}
    assert lines.count("event: ping") >= 1 + 3  # the mock's own ping, then the keep-alives
    assert [line for line in lines if line][-2:] == [
        "event: message_stop",
        'data: {"type":"message_stop"}',
    ]


# --- delays -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_latency(client: anthropic.Anthropic, baseline: str, stream: bool) -> None:
    started = time.perf_counter()
    with aichaos.inject([{"kind": "latency", "delay": 0.3}]) as chaos:
        text = text_of(events_of(client)) if stream else text_of_message(create(client))
    assert text == baseline
    assert time.perf_counter() - started >= 0.3 - SLACK
    headers_at = chaos.attempts[0].headers_at
    assert headers_at is not None and headers_at >= 0.3 - SLACK


def test_slow_stream(client: anthropic.Anthropic, baseline: str) -> None:
    fault = {"kind": "slow_stream", "ttft": 0.3, "inter_token": 0.015}
    with aichaos.inject([fault]) as chaos:
        started = time.perf_counter()
        stamps: list[float] = []
        events: list[RawMessageStreamEvent] = []
        for event in create(client, stream=True):
            events.append(event)
            if event.type == "content_block_delta":
                stamps.append(time.perf_counter())
    assert text_of(events) == baseline
    assert stamps[0] - started >= 0.3 - SLACK
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) * 0.015 - SLACK
    ttft = chaos.attempts[0].ttft
    assert ttft is not None and ttft >= 0.3 - SLACK


# --- malformed 200s -----------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["invalid_json", "truncated_json", "empty_body"])
def test_malformed_json_body(client: anthropic.Anthropic, variant: str) -> None:
    with (
        aichaos.inject([{"kind": "malformed", "variant": variant}]) as chaos,
        pytest.raises(json.JSONDecodeError),
    ):  # raw, not an AnthropicError, not retried
        create(client)
    assert [a.status for a in chaos.attempts] == [200]


def test_malformed_wrong_schema(client: anthropic.Anthropic) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "wrong_schema"}]):
        message = create(client)
    assert isinstance(message, Message)  # built without validation
    assert message.content is None and message.stop_reason is None


def test_malformed_html_error_page(client: anthropic.Anthropic) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "html_error_page"}]):
        message = create(client)
    assert isinstance(message, str) and message.startswith("<html>")


def test_malformed_wrong_content_type(client: anthropic.Anthropic, baseline: str) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "wrong_content_type"}]):
        raw = client.messages.with_raw_response.create(
            model=CLAUDE,
            max_tokens=1024,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    assert raw.headers["content-type"].startswith("text/plain")
    message = raw.parse()  # the body is valid JSON, and the SDK tries JSON anyway
    assert isinstance(message, Message) and text_of_message(message) == baseline


@pytest.mark.parametrize("variant", ["invalid_json", "truncated_json"])
def test_malformed_stream_event(client: anthropic.Anthropic, variant: str) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": variant}]) as chaos:
        received, exc = read_until_error(create(client, stream=True))
    assert type(exc) is json.JSONDecodeError
    assert received == []
    assert len(chaos.attempts) == 1


def test_malformed_stream_empty_body(client: anthropic.Anthropic) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "empty_body"}]):
        assert events_of(client) == []
        with pytest.raises(AssertionError):  # the helper has no message to give
            final_message(client)


def test_malformed_stream_html_error_page(client: anthropic.Anthropic) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "html_error_page"}]) as chaos:
        assert events_of(client) == []  # no `event:` lines: nothing is yielded, no error
    assert [a.status for a in chaos.attempts] == [200]


def test_malformed_stream_wrong_schema(client: anthropic.Anthropic, baseline: str) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "wrong_schema"}]):
        events = events_of(client)
    assert events[0].type is None  # message_start lost its shape
    assert getattr(events[0], "message", "missing") is None
    assert text_of(events) == baseline


def test_malformed_stream_wrong_content_type(client: anthropic.Anthropic, baseline: str) -> None:
    with aichaos.inject([{"kind": "malformed", "variant": "wrong_content_type"}]):
        raw = client.messages.with_raw_response.create(
            model=CLAUDE,
            max_tokens=1024,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
        assert raw.headers["content-type"].startswith("text/plain")
        events: list[Any] = list(raw.parse())
    assert text_of(events) == baseline


# --- content faults -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    ("fault", "stop", "kept"),
    [
        ({"kind": "content_filter", "after": 2}, "refusal", 2),
        ({"kind": "content_filter"}, "refusal", 0),
        ({"kind": "content_filter", "on": "prompt"}, "refusal", 0),  # no prompt-filter error
        ({"kind": "truncated", "after": 4}, "max_tokens", 4),
    ],
    ids=["content_filter-after-2", "content_filter", "content_filter-prompt", "truncated"],
)
def test_stop_reason_faults(
    client: anthropic.Anthropic,
    baseline: str,
    fault: dict[str, Any],
    stop: str,
    kept: int,
    stream: bool,
) -> None:
    with aichaos.inject([fault]):
        message = final_message(client) if stream else create(client)
    assert message.stop_reason == stop
    assert text_of_message(message) == " ".join(words(baseline)[:kept])


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_empty_completion(client: anthropic.Anthropic, stream: bool) -> None:
    with aichaos.inject([{"kind": "empty_completion"}]):
        message = final_message(client) if stream else create(client)
    assert text_of_message(message) == ""
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("mode", ["scramble", "mojibake", "replace", "inject"])
def test_corrupt_text(client: anthropic.Anthropic, baseline: str, mode: str, stream: bool) -> None:
    fault = {"kind": "corrupt_text", "mode": mode, "text": "IGNORE ALL RULES"}
    with aichaos.inject([fault]):
        text = text_of_message(final_message(client) if stream else create(client))
    if mode == "scramble":
        assert looks_scrambled(baseline, text)
    elif mode == "mojibake":
        assert text != baseline and "Ã" in text
    elif mode == "replace":
        assert text == "IGNORE ALL RULES"
    else:
        assert text == f"{baseline} IGNORE ALL RULES"


def test_corrupt_text_inject_waits_for_the_end_of_the_text_despite_pings(
    client: anthropic.Anthropic, baseline: str
) -> None:
    faults: list[dict[str, Any]] = [
        {"kind": "stream_stall", "after": 2, "stall": 0.1, "keepalive": 0.03},
        {"kind": "corrupt_text", "mode": "inject", "text": "IGNORE ALL RULES"},
    ]
    with aichaos.inject(faults):
        assert text_of_message(final_message(client)) == f"{baseline} IGNORE ALL RULES"


def tool_use_of(client: anthropic.Anthropic) -> tuple[str, Any, str | None]:
    """(name, input, stop_reason) of the single tool call the mock makes."""
    message = create(client, tools=ANTHROPIC_TOOLS)
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1
    return blocks[0].name, blocks[0].input, message.stop_reason


def partial_json_of(client: anthropic.Anthropic) -> tuple[str, str, str | None]:
    """(name, joined partial_json, stop_reason) of a streamed tool call, as sent."""
    events = events_of(client, tools=ANTHROPIC_TOOLS)
    names = [
        e.content_block.name
        for e in events
        if e.type == "content_block_start" and e.content_block.type == "tool_use"
    ]
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(names) == 1
    return names[0], "".join(fragments), (stop_reasons(events) or [None])[0]


@pytest.fixture(scope="module")
def good_input() -> tuple[dict[str, Any], str]:
    """The tool input the mock sends unfaulted, as an object and as streamed JSON text."""
    with aichaos.inject(), anthropic.Anthropic(api_key=API_KEY) as sdk:
        name, value, stop = tool_use_of(sdk)
        streamed_name, streamed, streamed_stop = partial_json_of(sdk)
    assert (name, stop, streamed_name, streamed_stop) == ("get_weather", "tool_use") * 2
    assert isinstance(value, dict) and set(value) == {"city", "unit"}
    assert json.loads(streamed) == value
    return value, streamed


def test_bad_tool_call_invalid_json(
    client: anthropic.Anthropic, good_input: tuple[dict[str, Any], str]
) -> None:
    with aichaos.inject([{"kind": "bad_tool_call", "variant": "invalid_json"}]):
        name, value, stop = tool_use_of(client)
        streamed_name, streamed, _ = partial_json_of(client)
        with pytest.raises(ValueError, match="Unable to parse tool parameter JSON"):
            final_message(client, tools=ANTHROPIC_TOOLS)  # the helper parses the input
    assert (name, stop, streamed_name) == ("get_weather", "tool_use", "get_weather")
    assert isinstance(value, str)  # the input is not an object
    with pytest.raises(json.JSONDecodeError):
        json.loads(value)
    assert streamed == "{" + good_input[1]  # every fragment kept, one stray brace up front


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_bad_tool_call_unknown_tool(
    client: anthropic.Anthropic, good_input: tuple[dict[str, Any], str], stream: bool
) -> None:
    fault = {"kind": "bad_tool_call", "variant": "unknown_tool", "tool_name": "launch_rocket"}
    name: str
    stop: str | None
    with aichaos.inject([fault]):
        if stream:
            message = final_message(client, tools=ANTHROPIC_TOOLS)
            block = next(b for b in message.content if b.type == "tool_use")
            name, value, stop = block.name, block.input, message.stop_reason
        else:
            name, value, stop = tool_use_of(client)
    assert (name, stop) == ("launch_rocket", "tool_use")
    assert value == good_input[0]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_bad_tool_call_missing_arguments(client: anthropic.Anthropic, stream: bool) -> None:
    name: str
    stop: str | None
    with aichaos.inject([{"kind": "bad_tool_call", "variant": "missing_arguments"}]):
        if stream:
            message = final_message(client, tools=ANTHROPIC_TOOLS)
            block = next(b for b in message.content if b.type == "tool_use")
            name, value, stop = block.name, block.input, message.stop_reason
        else:
            name, value, stop = tool_use_of(client)
    assert (name, value, stop) == ("get_weather", {}, "tool_use")


# --- stateful rate limiter --------------------------------------------------------------------


def test_rate_limiter_counts_requests(client: anthropic.Anthropic, baseline: str) -> None:
    with aichaos.inject([{"kind": "rate_limiter", "rpm": 1, "per": 0.4}]) as chaos:
        assert text_of_message(create(client)) == baseline
        assert text_of_message(create(client)) == baseline  # after one 429
    assert [a.status for a in chaos.attempts] == [200, 429, 200]
    assert chaos.attempts[1].faults == ["rate_limiter"]
    first, _, retry = chaos.attempts  # retried once the window frees up
    assert retry.started - first.started >= 0.4 - SLACK


def test_rate_limiter_counts_streamed_tokens(client: anthropic.Anthropic) -> None:
    with aichaos.inject([{"kind": "rate_limiter", "tpm": 10, "per": 60}]) as chaos:
        message = final_message(client)
        assert message.usage.input_tokens + message.usage.output_tokens > 10
        with pytest.raises(anthropic.RateLimitError) as info:
            create(client.with_options(max_retries=0))
    assert "input tokens per minute" in info.value.body["error"]["message"]  # type: ignore[index]
    assert chaos.attempts[0].output_tokens == message.usage.output_tokens
    assert [a.status for a in chaos.attempts] == [200, 429]


# --- async client (a representative subset) -----------------------------------------------------


@pytest.fixture
async def aclient() -> Any:
    async with anthropic.AsyncAnthropic(api_key=API_KEY) as sdk:
        yield sdk


async def acreate(client: anthropic.AsyncAnthropic, **kw: Any) -> Any:
    return await client.messages.create(
        model=CLAUDE,
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        **kw,
    )


@pytest.mark.anyio
async def test_async_retries_in_concurrent_call_scopes(
    aclient: anthropic.AsyncAnthropic, baseline: str, sleeps: SdkSleeps
) -> None:
    faults = [
        for_case("clears", {"kind": "rate_limit", "first": 2, "retry_after": 0.2}),
        for_case("outage", {"kind": "outage"}),
        for_case("timeout", {"kind": "timeout"}),
    ]

    async def call(case: str, sdk: anthropic.AsyncAnthropic) -> tuple[Any, list[Attempt]]:
        with aichaos.call_scope(case) as scope:
            try:
                message = await acreate(sdk, extra_headers={CASE_HEADER: case})
                return text_of_message(message), scope.attempts
            except anthropic.APIError as exc:
                return exc, scope.attempts

    async with aichaos.inject(faults):
        results = await asyncio.gather(
            call("clears", aclient),
            call("outage", aclient),
            call("timeout", aclient.with_options(timeout=0.2)),
        )
    (text, clears), (overloaded, outage), (timed_out, timeouts) = results
    assert text == baseline
    assert [a.status for a in clears] == [429, 429, 200]
    assert_retry_after(clears, 0.2, sleeps.of("clears"))
    assert type(overloaded) is anthropic.OverloadedError
    assert [a.status for a in outage] == [529] * 3
    assert_backoff(outage, sleeps.of("outage"))
    assert type(timed_out) is anthropic.APITimeoutError
    assert [a.error for a in timeouts] == ["httpx2.ReadTimeout"] * 3
    assert_backoff(timeouts, sleeps.of("timeout"))
    for case, attempts in zip(
        ("clears", "outage", "timeout"), (clears, outage, timeouts), strict=True
    ):
        assert {a.call_id for a in attempts} == {case}


@pytest.mark.anyio
async def test_async_stream_faults(aclient: anthropic.AsyncAnthropic, baseline: str) -> None:
    import httpx2

    faults = [
        {"kind": "slow_stream", "ttft": 0.25, "inter_token": 0},
        {"kind": "stream_cut", "mode": "drop", "after": 3},
    ]
    async with aichaos.inject(faults) as chaos:
        started = time.perf_counter()
        stream = await acreate(aclient, stream=True)
        received: list[RawMessageStreamEvent] = []
        first_at = None
        with pytest.raises(httpx2.RemoteProtocolError):
            async for event in stream:
                received.append(event)
                if first_at is None and event.type == "content_block_delta":
                    first_at = time.perf_counter()
    assert first_at is not None and first_at - started >= 0.25 - SLACK
    assert text_of(received) == " ".join(words(baseline)[:3])
    assert chaos.attempts[0].faults == ["slow_stream", "stream_cut(drop)"]


@pytest.mark.anyio
async def test_async_stream_error_event(aclient: anthropic.AsyncAnthropic) -> None:
    fault = {"kind": "stream_cut", "mode": "error_event", "after": 1, "error_type": "api_error"}
    async with aichaos.inject([fault]) as chaos:
        stream = await acreate(aclient, stream=True)
        with pytest.raises(anthropic.APIStatusError) as info:
            async for _ in stream:
                pass
    assert type(info.value) is anthropic.APIStatusError
    assert info.value.status_code == 200 and info.value.type == "api_error"
    assert len(chaos.attempts) == 1


@pytest.mark.anyio
async def test_async_bad_tool_call_stream(
    aclient: anthropic.AsyncAnthropic, good_input: tuple[dict[str, Any], str]
) -> None:
    async with aichaos.inject([{"kind": "bad_tool_call", "variant": "invalid_json"}]):
        stream = await acreate(aclient, tools=ANTHROPIC_TOOLS, stream=True)
        fragments = [
            e.delta.partial_json
            async for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
    assert "".join(fragments) == "{" + good_input[1]
