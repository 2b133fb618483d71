"""Retries against the real openai (3.x) and anthropic (2.x) SDKs: one table.

Each row is a scenario the SDK retries (an error status, or a failed connection): the fault,
the SDK, stream or not -> the exception class the SDK raises (or the answer, once a rate
limit clears), its status and error body, how many attempts the SDK makes with its default
`max_retries=2`, and how it waits in between (the retry-after it honours, or its own
backoff: the delays the SDK computes are recorded, the real waits bounded from below).
Every row runs against each client of its SDK: openai on its default client (httpx2) and on
a plain `httpx.Client`; anthropic on its default client (it refuses a plain one). The rows
marked `aio` run on each SDK's async client too, as tasks of one event loop, each in its own
call scope.

What the rows expect comes from the provider reference and the SDKs' sources: openai's
`.body` is the *inner* error object, anthropic's the *whole* error JSON; anthropic 2.x picks
subclasses such as `OverloadedError` or `ServiceUnavailableError`. Errors the SDK does not
retry, and the shapes of error bodies, are in test_sdk_errors.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from sdk_support import (
    SDKS,
    Outcome,
    Sdk,
    answer_text,
    applies,
    assert_error_body,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
    transport_module,
)
from sdk_waits import SLACK, SdkSleeps, assert_backoff, assert_retry_after

# --- retried errors and connection failures ---------------------------------------------
#
# Retried calls spend their time asleep in the SDK's backoff. All the scenarios of one
# client run side by side (one thread and call scope each, their fault matched by a
# header), and every test below checks one of them.


@dataclass(frozen=True)
class Retried:
    """A scenario the SDK retries: what it raises (None: the call succeeds in the end), the
    status of each attempt, and the retry-after it honours (None: its own backoff)."""

    provider: str
    name: str
    fault: dict[str, Any]
    error: str | None
    statuses: tuple[int | None, ...]
    wait: float | None = None
    type_: str = ""
    code: str | None = None
    cause: str | None = None  # the transport's exception under a connection error
    timeout: float | None = None  # the client's read timeout
    slowest: float = 0.0  # each attempt lasts at least this long
    stream: bool = False
    max_retries: int | None = None
    header: str | None = None  # the retry-after header the error carries, when checked
    aio: bool = False  # also on the SDK's async client (a representative subset)


THREE_429 = (429, 429, 429)

# The retry delays the SDKs compute are recorded exactly; the recorder really sleeps a tenth
# of each, so whole-second waits do not slow the suite (`SdkSleeps`).
SCALE = 0.1

RETRIED = [
    # a retry-after the SDK honours
    # OpenAI keeps the wait's precision in `retry-after` (the SDK reads decimal seconds)
    Retried("openai", "rate_limit-requests", {"kind": "rate_limit", "retry_after": 0.25},
            "RateLimitError", THREE_429, 0.25, "requests", "rate_limit_exceeded",
            header="0.25"),
    Retried("openai", "rate_limit-tokens",
            {"kind": "rate_limit", "scope": "tokens", "retry_after": "200ms"},
            "RateLimitError", THREE_429, 0.2, "tokens", "rate_limit_exceeded"),
    Retried("openai", "error-500-retry-after-ms-only",
            {"kind": "error", "status": 500, "headers": {"retry-after-ms": "200"}},
            "InternalServerError", (500,) * 3, 0.2, "server_error"),
    Retried("openai", "error-409-retry-after-only",
            {"kind": "error", "status": 409, "headers": {"retry-after": "0.2"}},
            "ConflictError", (409,) * 3, 0.2, "invalid_request_error"),
    Retried("openai", "rate_limit-one-retry", {"kind": "rate_limit", "retry_after": 1.2},
            "RateLimitError", (429, 429), 1.2, "requests", "rate_limit_exceeded",
            max_retries=1, header="1.2"),
    Retried("openai", "error-408", {"kind": "error", "status": 408, "retry_after": 0.2},
            "APIStatusError", (408,) * 3, 0.2, "invalid_request_error"),
    # Anthropic sends whole seconds, rounded up: a 0.25 s wait goes out as `retry-after: 1`
    # and the SDK sleeps 1 s (`_calculate_retry_timeout` honours any delay above 0)
    Retried("anthropic", "rate_limit", {"kind": "rate_limit", "retry_after": 0.25},
            "RateLimitError", THREE_429, 1.0, "rate_limit_error", header="1"),
    Retried("anthropic", "rate_limit-tokens",
            {"kind": "rate_limit", "scope": "tokens", "retry_after": 0.2},
            "RateLimitError", THREE_429, 1.0, "rate_limit_error", header="1"),
    Retried("anthropic", "rate_limit-one-retry", {"kind": "rate_limit", "retry_after": 1.2},
            "RateLimitError", (429, 429), 2.0, "rate_limit_error", max_retries=1, header="2"),
    Retried("anthropic", "error-500", {"kind": "error", "status": 500, "retry_after": 0.2},
            "InternalServerError", (500,) * 3, 1.0, "api_error", header="1"),
    Retried("anthropic", "error-503-retry-after-ms-only",
            {"kind": "error", "status": 503, "headers": {"retry-after-ms": "200"}},
            "ServiceUnavailableError", (503,) * 3, 0.2, "api_error"),
    Retried("anthropic", "error-504-retry-after-only",
            {"kind": "error", "status": 504, "headers": {"retry-after": "0.2"}},
            "GatewayTimeoutError", (504,) * 3, 0.2, "timeout_error"),
    Retried("anthropic", "error-408", {"kind": "error", "status": 408, "retry_after": 0.2},
            "RequestTimeoutError", (408,) * 3, 1.0, "invalid_request_error", header="1"),
    Retried("anthropic", "error-409", {"kind": "error", "status": 409, "retry_after": 0.2},
            "ConflictError", (409,) * 3, 1.0, "invalid_request_error", header="1"),
    Retried("anthropic", "error-529", {"kind": "error", "status": 529, "retry_after": 0.2},
            "OverloadedError", (529,) * 3, 1.0, "overloaded_error", header="1"),
    # no retry-after: the SDK's own backoff
    Retried("openai", "outage", {"kind": "outage"}, "InternalServerError", (500,) * 3,
            type_="server_error"),
    Retried("openai", "outage-503", {"kind": "outage", "status": 503}, "InternalServerError",
            (503,) * 3, type_="server_error", aio=True),
    Retried("openai", "quota_exhausted", {"kind": "quota_exhausted"}, "RateLimitError",
            THREE_429, type_="insufficient_quota", code="insufficient_quota"),
    Retried("anthropic", "outage", {"kind": "outage"}, "OverloadedError", (529,) * 3,
            type_="overloaded_error", aio=True),
    Retried("anthropic", "outage-500", {"kind": "outage", "status": 500},
            "InternalServerError", (500,) * 3, type_="api_error"),
]  # fmt: skip

CLEARS = [
    Retried(provider, f"rate_limit-clears{'-stream' * stream}",
            {"kind": "rate_limit", "first": 2, "retry_after": 0.2}, None, (429, 429, 200), wait,
            stream=stream, aio=True)
    for provider, wait in (("openai", 0.2), ("anthropic", 1.0))  # Anthropic: whole seconds
    for stream in (False, True)
]  # fmt: skip

_FailureCase = tuple[str, dict[str, Any], str, tuple[int | None, ...], str, float | None, float]
_FAILURES: list[_FailureCase] = [
    # name, fault, error, statuses, the transport's exception, read timeout, slowest attempt
    ("timeout", {"kind": "timeout"}, "APITimeoutError", (None,) * 3, "ReadTimeout", 0.2, 0.2),
    # the server gives up first: a connection error, not a timeout
    ("server-hang", {"kind": "timeout", "hang": 0.1}, "APIConnectionError", (None,) * 3,
     "RemoteProtocolError", 5, 0.1),
    ("reset", {"kind": "connection_reset"}, "APIConnectionError", (None,) * 3,
     "RemoteProtocolError", None, 0.0),
    ("reset-after-bytes", {"kind": "connection_reset", "after_bytes": 40},
     "APIConnectionError", (200,) * 3, "RemoteProtocolError", None, 0.0),
    ("refused", {"kind": "connection_refused"}, "APIConnectionError", (None,) * 3,
     "ConnectError", None, 0.0),
]  # fmt: skip

CONNECTION = [
    Retried(
        provider,
        name,
        fault,
        error,
        statuses,
        cause=cause,
        timeout=timeout,
        slowest=slowest,
        aio=name == "timeout",
    )
    for provider in ("openai", "anthropic")
    for name, fault, error, statuses, cause, timeout, slowest in _FAILURES
]

BEYOND_120_SECONDS = [  # openai >= 2.52 refuses a retry-after above 120 s: no retry
    Retried("openai", "rate_limit-121s", {"kind": "rate_limit", "retry_after": 121},
            "RateLimitError", (429,)),
    Retried("openai", "error-503-300s",
            {"kind": "error", "status": 503, "headers": {"retry-after": "300"}},
            "InternalServerError", (503,)),
]  # fmt: skip

SPEND_LIMIT = Retried(  # anthropic's 429 of its own class; no retry-after, yet retried
    "anthropic", "quota_exhausted", {"kind": "quota_exhausted"}, "RateLimitError", THREE_429
)

SCENARIOS = [*RETRIED, *CLEARS, *CONNECTION, *BEYOND_120_SECONDS, SPEND_LIMIT]


def run_scenarios(sdk: Sdk) -> dict[str, Outcome]:
    """The outcome of every scenario of `sdk`'s provider, all run side by side."""
    mine = [row for row in SCENARIOS if applies(row, sdk)]
    assert len({row.name for row in mine}) == len(mine)

    def call(client: Any, headers: dict[str, str], *, row: Retried) -> Any:
        if row.timeout is not None:
            client = client.with_options(timeout=row.timeout)
        if row.max_retries is not None:
            client = client.with_options(max_retries=row.max_retries)
        return answer_text(sdk, client, row.stream, headers)

    cases = {row.name: ([row.fault], functools.partial(call, row=row)) for row in mine}
    with pytest.MonkeyPatch.context() as patch:
        return run_side_by_side(sdk, cases, SdkSleeps(SCALE).install(patch))


outcomes = outcomes_fixture(run_scenarios)


def outcome_of(outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Retried) -> Outcome:
    outcome = outcomes(sdk)[row.name]
    assert {a.call_id for a in outcome.attempts} == {row.name}
    assert [a.status for a in outcome.attempts] == list(row.statuses)
    return outcome


@pytest.mark.parametrize(("sdk", "row"), rows_for(RETRIED))
def test_status_error_is_retried(
    outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Retried
) -> None:
    outcome = outcome_of(outcomes, sdk, row)
    exc: Any = outcome.error
    assert row.error is not None and type(exc) is getattr(sdk.module, row.error)
    assert isinstance(exc, sdk.module.APIStatusError)
    assert exc.status_code == row.statuses[-1]
    assert_error_body(sdk, exc, row.type_, row.code)
    if row.wait is None:
        assert "retry-after" not in exc.response.headers
        assert_backoff(outcome.attempts, outcome.sleeps, SCALE)
    else:
        if row.header is not None:
            assert exc.response.headers["retry-after"] == row.header
        if "retry-after-ms" not in row.fault.get("headers", {}):
            assert "retry-after-ms" not in exc.response.headers  # Azure's only, not sent here
        assert_retry_after(outcome.attempts, row.wait, outcome.sleeps, SCALE)


@pytest.mark.parametrize(("sdk", "row"), rows_for(CLEARS))
def test_rate_limit_clears_and_the_call_succeeds(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
    baselines: dict[str, str],
    sdk: Sdk,
    row: Retried,
) -> None:
    outcome = outcome_of(outcomes, sdk, row)
    assert outcome.error is None
    assert outcome.result == baselines[sdk.provider]
    # Several rate_limit faults run side by side (one per case): records tell them apart by id.
    labels = [[f.partition("#")[0] for f in a.faults] for a in outcome.attempts]
    assert labels == [["rate_limit(requests)"]] * 2 + [[]]
    assert [a.stream for a in outcome.attempts] == [row.stream] * 3
    assert row.wait is not None
    assert_retry_after(outcome.attempts, row.wait, outcome.sleeps, SCALE)


@pytest.mark.parametrize(("sdk", "row"), rows_for(CONNECTION))
def test_connection_failure_is_retried(
    outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Retried
) -> None:
    outcome = outcome_of(outcomes, sdk, row)
    exc: Any = outcome.error
    assert row.error is not None and type(exc) is getattr(sdk.module, row.error)
    assert row.cause is not None
    assert isinstance(exc.__cause__, getattr(transport_module(sdk.flavor), row.cause))
    if row.error == "APIConnectionError":
        assert exc.message == "Connection error."
    assert [a.error for a in outcome.attempts] == [f"{sdk.flavor}.{row.cause}"] * 3
    assert all(
        a.duration is not None and a.duration >= row.slowest - SLACK for a in outcome.attempts
    )
    assert_backoff(outcome.attempts, outcome.sleeps, SCALE)


@pytest.mark.parametrize(("sdk", "row"), rows_for(BEYOND_120_SECONDS))
def test_retry_after_beyond_120_seconds_is_not_retried(
    outcomes: Callable[[Sdk], dict[str, Outcome]], sdk: Sdk, row: Retried
) -> None:
    outcome = outcome_of(outcomes, sdk, row)
    assert row.error is not None and type(outcome.error) is getattr(sdk.module, row.error)
    assert outcome.sleeps == []


def test_anthropic_spend_limit_is_a_429_of_its_own_class_that_the_sdk_still_retries(
    outcomes: Callable[[Sdk], dict[str, Outcome]],
) -> None:
    from anthropic.types.shared.enforced_spend_limit_reached_error import (
        EnforcedSpendLimitReachedError,
    )

    outcome = outcome_of(outcomes, SDKS[2], SPEND_LIMIT)  # status is all the SDK retries on
    exc: Any = outcome.error
    assert type(exc) is EnforcedSpendLimitReachedError
    assert isinstance(exc, anthropic.RateLimitError)  # apps catching 429s catch it too
    assert exc.body["error"]["details"] == {"error_code": "enforced_spend_limit_reached"}  # type: ignore[index]
    assert "retry-after" not in exc.response.headers  # waiting will not clear it
    assert_backoff(outcome.attempts, outcome.sleeps, SCALE)
