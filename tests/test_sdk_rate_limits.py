"""Rate limits against the real openai (3.x) and anthropic (2.x) SDKs: what a 429 says in its
headers, how long each SDK agrees to wait, and the stateful `rate_limiter` that counts requests
and streamed tokens. Each table runs against every client of the SDKs its rows name (openai on
httpx2 and on a plain `httpx.Client`, anthropic on its default httpx2 client).

What the rows expect comes from the provider reference (§1.2 and §3.1 for the headers, §2.4 and
§3.2 for the SDKs' retry-after rules): OpenAI keeps a wait's precision in `retry-after` and names
its limits in `x-ratelimit-*` with Go-style durations; Anthropic sends whole seconds and
`anthropic-ratelimit-*` with RFC 3339 reset times; openai >= 2.52 refuses a retry-after above
120 s, anthropic >= 1 sleeps any. The retry-the-429 scenarios are in test_sdk_retries.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

import aichaos
from sdk_support import (
    CLAUDE,
    MESSAGES,
    SDKS,
    Sdk,
    answer_text,
    azure_client,
    create,
    error_message,
    rows_for,
    sdk_client,
)
from sdk_waits import SLACK, SdkSleeps, SleepClock, assert_retry_after

OPENAI_FLAVORS = [sdk.flavor for sdk in SDKS if sdk.provider == "openai"]
RFC_3339_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"


# --- what a 429 says ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Headers:
    """A 429's headers (exact values, and formats by regex) and its message, per provider."""

    provider: str
    name: str
    fault: dict[str, Any]
    exact: dict[str, str]
    formats: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    message: str = ""  # part of the error's own message


HEADERS = [
    # the wait's precision kept (the SDK reads decimal seconds); api.openai.com sends no
    # `retry-after-ms` (Azure does)
    Headers("openai", "requests", {"kind": "rate_limit", "retry_after": 0.25, "limit": 60},
            {"retry-after": "0.25", "x-ratelimit-limit-requests": "60",
             "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "250ms"},
            absent=("retry-after-ms",), message="Limit 60"),
    # whole seconds only, and the reset as an RFC 3339 time
    Headers("anthropic", "requests", {"kind": "rate_limit", "retry_after": 2, "limit": 50},
            {"retry-after": "2", "anthropic-ratelimit-requests-limit": "50",
             "anthropic-ratelimit-requests-remaining": "0"},
            formats={"anthropic-ratelimit-requests-reset": RFC_3339_UTC},
            absent=("retry-after-ms",), message="50 requests per minute"),
]  # fmt: skip


@pytest.mark.parametrize(("sdk", "row"), rows_for(HEADERS))
def test_rate_limit_headers(sdk: Sdk, row: Headers) -> None:
    with (
        sdk_client(sdk) as client,
        aichaos.inject([row.fault]),
        pytest.raises(sdk.module.RateLimitError) as info,
    ):
        create(sdk, client.with_options(max_retries=0))
    headers = info.value.response.headers
    assert {name: headers.get(name) for name in row.exact} == row.exact
    for name, pattern in row.formats.items():
        assert re.fullmatch(pattern, headers[name]), headers[name]
    assert [name for name in row.absent if name in headers] == []
    assert row.message in error_message(sdk, info.value)


@dataclass(frozen=True)
class LongWait:
    """A retry-after of an hour: the delays the SDK sleeps, and its attempts."""

    provider: str
    name: str
    sleeps: tuple[float, ...]
    attempts: int


LONG_WAITS = [
    LongWait("openai", "refused", (), 1),  # openai >= 2.52: above 120 s, no retry at all
    LongWait("anthropic", "slept", (3600.0, 3600.0), 3),  # anthropic >= 1: any delay, twice
]


@pytest.mark.parametrize(("sdk", "row"), rows_for(LONG_WAITS))
def test_an_hour_long_retry_after(sdk: Sdk, row: LongWait, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = SdkSleeps(0.0).install(monkeypatch)  # records each delay, sleeps none of it
    with (
        sdk_client(sdk) as client,
        aichaos.inject([{"kind": "rate_limit", "retry_after": 3600}]) as chaos,
        pytest.raises(sdk.module.RateLimitError),
    ):
        create(sdk, client)
    assert sleeps.of() == list(row.sleeps)
    assert len(chaos.attempts) == row.attempts


# --- the stateful rate limiter ---------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The rate limiter's 429 once the window is full: the retry-after the SDK sleeps."""

    provider: str
    name: str
    wait: float
    scale: float  # the recorder sleeps this fraction of each delay (`SdkSleeps`)


WINDOWS = [
    Window("openai", "decimal-seconds", 0.4, 1.0),  # the time left in the window, as it is
    # the window frees up in 0.4 s; Anthropic says so in whole seconds (`retry-after: 1`)
    Window("anthropic", "whole-seconds", 1.0, 0.1),
]


@pytest.mark.parametrize(("sdk", "row"), rows_for(WINDOWS))
def test_rate_limiter_counts_requests(
    sdk: Sdk, row: Window, baselines: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = SdkSleeps(row.scale).install(monkeypatch)
    SleepClock().install(monkeypatch, sleeps)  # the window moves by the SDK's sleeps only
    with (
        sdk_client(sdk) as client,
        aichaos.inject([{"kind": "rate_limiter", "rpm": 1, "per": 0.4}]) as chaos,
    ):
        assert answer_text(sdk, client, False, {}) == baselines[sdk.provider]
        assert answer_text(sdk, client, False, {}) == baselines[sdk.provider]  # after one 429
    assert [a.status for a in chaos.attempts] == [200, 429, 200]
    assert chaos.attempts[1].faults == ["rate_limiter"]
    # The 429's retry-after is the time left in the window: the retry comes once it frees up.
    first, _, retry = chaos.attempts
    assert sleeps.of() == [pytest.approx(row.wait)]
    assert retry.started - first.started >= row.wait * row.scale - SLACK


@dataclass(frozen=True)
class Tokens:
    """The limiter's tokens 429 after a streamed answer: its type and its message."""

    provider: str
    name: str
    type_: str
    message: str


TOKENS = [
    Tokens("openai", "tpm", "tokens", "tokens per min (TPM)"),
    Tokens("anthropic", "input-tpm", "rate_limit_error", "input tokens per minute"),
]


def streamed_usage(sdk: Sdk, client: Any) -> tuple[int, int]:
    """(all tokens, output tokens) a streamed answer reports: openai's usage chunk (asked for),
    anthropic's usage as its `messages.stream()` helper accumulates it."""
    if sdk.provider == "anthropic":
        with client.messages.stream(model=CLAUDE, max_tokens=1024, messages=MESSAGES) as stream:
            for _ in stream:
                pass
            usage = stream.get_final_message().usage
        return usage.input_tokens + usage.output_tokens, usage.output_tokens
    chunks = list(create(sdk, client, stream=True, stream_options={"include_usage": True}))
    found = chunks[-1].usage
    assert found is not None
    return found.total_tokens, found.completion_tokens


@pytest.mark.parametrize(("sdk", "row"), rows_for(TOKENS))
def test_rate_limiter_counts_streamed_tokens(sdk: Sdk, row: Tokens) -> None:
    with (
        sdk_client(sdk) as client,
        aichaos.inject([{"kind": "rate_limiter", "tpm": 10, "per": 60}]) as chaos,
    ):
        total, output = streamed_usage(sdk, client)
        assert total > 10
        with pytest.raises(sdk.module.RateLimitError) as info:
            create(sdk, client.with_options(max_retries=0))
    assert info.value.type == row.type_
    assert row.message in error_message(sdk, info.value)
    assert chaos.attempts[0].output_tokens == output
    assert [a.status for a in chaos.attempts] == [200, 429]


@pytest.mark.parametrize("sdk", SDKS[:2], ids=lambda sdk: sdk.id)
def test_rate_limiter_counts_a_stream_that_reports_no_usage(sdk: Sdk) -> None:
    """openai streams carry no usage unless asked (`include_usage`; anthropic's always do); the
    provider still counts their tokens, and so does the limiter: one per streamed delta."""
    with (
        sdk_client(sdk) as client,
        aichaos.inject([{"kind": "rate_limiter", "tpm": 10, "per": 60}]) as chaos,
    ):
        chunks = list(create(sdk, client, stream=True))
        assert all(c.usage is None for c in chunks)
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 10
        with pytest.raises(openai.RateLimitError) as info:
            create(sdk, client.with_options(max_retries=0))
    assert info.value.type == "tokens"
    assert [a.status for a in chaos.attempts] == [200, 429]
    assert chaos.attempts[0].output_tokens is None  # nothing reported, nothing recorded


# --- Azure OpenAI: its own 429s ---------------------------------------------------------------


@pytest.mark.parametrize("flavor", OPENAI_FLAVORS)
def test_azure_rate_limit(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = SdkSleeps().install(monkeypatch)
    fault = {"kind": "rate_limit", "retry_after": 0.25}
    with (
        azure_client(flavor) as azure,
        aichaos.inject([fault], backends={"azure": "azure"}) as chaos,
        pytest.raises(openai.RateLimitError) as info,
    ):
        azure.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.code == "429" and info.value.type is None
    assert "Please retry after 1 seconds" in info.value.message
    headers = info.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "250")  # whole, exact
    assert len(chaos.attempts) == 3
    assert_retry_after(chaos.attempts, 0.25, sleeps.of())  # the SDK reads retry-after-ms first


@pytest.mark.parametrize("flavor", OPENAI_FLAVORS)
def test_azure_quota_exhausted_is_not_retried(flavor: str) -> None:
    with (
        azure_client(flavor) as azure,
        aichaos.inject([{"kind": "quota_exhausted"}], backends={"azure": "azure"}) as chaos,
        pytest.raises(openai.RateLimitError) as info,
    ):
        azure.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "86400"
    assert len(chaos.attempts) == 1  # retry-after > 120 s: openai does not retry
