"""Error answers against the real openai (3.x) and anthropic (2.x) SDKs: the ones no retry
clears, and the shapes of error bodies (the provider's JSON, a gateway's HTML page, codes and
headers given by hand).

Each row is a scenario: the fault, the SDK, stream or not -> the exception class the SDK
raises, its status, `.type`/`.code`, its error body and how many attempts the SDK makes with
its default `max_retries=2`. Every row runs against each client of its SDK: openai on its
default client (httpx2) and on a plain `httpx.Client`; anthropic on its default client (it
refuses a plain one).

What the rows expect comes from the provider reference and the SDKs' sources: openai's
`.body` is the *inner* error object, anthropic's the *whole* error JSON (both: the raw text
when it is not JSON, `_base_client._make_status_error_from_response`); anthropic 2.x picks
subclasses such as `PaymentRequiredError` or `ContentTooLargeError`
(`_error_classes.make_status_error`: any other status >= 500 is an `InternalServerError`).
Retried errors are in test_sdk_retries.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

import aichaos
from sdk_support import (
    API_KEY,
    CLAUDE,
    GPT,
    SDKS,
    Outcome,
    Outcomes,
    Sdk,
    assert_error_body,
    assert_inner_error_body,
    create,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
    sdk_client,
)
from sdk_waits import SdkSleeps, assert_backoff


def test_plain_httpx_clients_are_rejected_by_anthropic() -> None:
    """Why anthropic runs on httpx2 only: anthropic >= 1 refuses a plain httpx.Client."""
    with httpx.Client() as plain, pytest.raises(TypeError):
        anthropic.Anthropic(api_key=API_KEY, http_client=plain)  # type: ignore[arg-type]


# --- errors the SDK does not retry --------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """An error answer no retry clears: one attempt, the class, the body, the message."""

    provider: str
    name: str
    fault: dict[str, Any]
    error: str  # the exception class, in the SDK's module
    type_: str
    code: str | None
    message: str  # part of the error's message
    param: str | None = None  # openai's `.param`, when the answer names one


NOT_RETRIED = [
    Refused("openai", "error-400", {"kind": "error", "status": 400}, "BadRequestError",
            "invalid_request_error", None, ""),
    Refused("openai", "error-403", {"kind": "error", "status": 403}, "PermissionDeniedError",
            "request_forbidden", "unsupported_country_region_territory",
            "Country, region, or territory not supported"),
    Refused("openai", "error-404", {"kind": "error", "status": 404}, "NotFoundError",
            "invalid_request_error", None, ""),
    Refused("openai", "error-422", {"kind": "error", "status": 422}, "UnprocessableEntityError",
            "invalid_request_error", None, ""),
    Refused("openai", "error-418", {"kind": "error", "status": 418}, "APIStatusError",
            "invalid_request_error", None, ""),
    Refused("openai", "error-custom",
            {"kind": "error", "status": 400, "type": "my_type", "code": "my_code",
             "message": "Mine."},
            "BadRequestError", "my_type", "my_code", "Mine."),
    Refused("openai", "context_length", {"kind": "context_length", "limit": 8192},
            "BadRequestError", "invalid_request_error", "context_length_exceeded",
            "maximum context length is 8192 tokens", param="messages"),
    Refused("openai", "auth_error", {"kind": "auth_error"}, "AuthenticationError",
            "invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    Refused("openai", "model_not_found", {"kind": "model_not_found"}, "NotFoundError",
            "invalid_request_error", "model_not_found", f"The model `{GPT}` does not exist"),
    Refused("anthropic", "error-400", {"kind": "error", "status": 400}, "BadRequestError",
            "invalid_request_error", None, ""),
    Refused("anthropic", "error-401", {"kind": "error", "status": 401}, "AuthenticationError",
            "authentication_error", None, ""),
    Refused("anthropic", "error-402", {"kind": "error", "status": 402}, "PaymentRequiredError",
            "billing_error", None, ""),
    Refused("anthropic", "error-403", {"kind": "error", "status": 403}, "PermissionDeniedError",
            "permission_error", None, ""),
    Refused("anthropic", "error-404", {"kind": "error", "status": 404}, "NotFoundError",
            "not_found_error", None, ""),
    Refused("anthropic", "error-413", {"kind": "error", "status": 413}, "ContentTooLargeError",
            "request_too_large", None, ""),
    # no class of its own (`_error_classes.make_status_error`); the other 4xx's error type
    Refused("anthropic", "error-418", {"kind": "error", "status": 418}, "APIStatusError",
            "invalid_request_error", None, ""),
    Refused("anthropic", "error-422", {"kind": "error", "status": 422},
            "UnprocessableEntityError", "invalid_request_error", None, ""),
    Refused("anthropic", "error-custom",
            {"kind": "error", "status": 400, "type": "my_error", "message": "Mine."},
            "BadRequestError", "my_error", None, "Mine."),
    Refused("anthropic", "context_length",
            {"kind": "context_length", "limit": 200000, "tokens": 210000}, "BadRequestError",
            "invalid_request_error", None, "prompt is too long: 210000 tokens > 200000 maximum"),
    Refused("anthropic", "auth_error", {"kind": "auth_error"}, "AuthenticationError",
            "authentication_error", None, "x-api-key"),
    Refused("anthropic", "model_not_found", {"kind": "model_not_found"}, "NotFoundError",
            "not_found_error", None, f"model: {CLAUDE}"),
    Refused("anthropic", "quota_exhausted-credit_balance",  # a 400 no retry clears
            {"kind": "quota_exhausted", "variant": "credit_balance"}, "BadRequestError",
            "invalid_request_error", None, "Your credit balance is too low"),
]  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(("sdk", "row"), rows_for(NOT_RETRIED))
def test_error_is_not_retried(sdk: Sdk, row: Refused, stream: bool) -> None:
    with (
        sdk_client(sdk) as client,
        aichaos.inject([row.fault]) as chaos,
        pytest.raises(sdk.module.APIStatusError) as info,
    ):
        create(sdk, client, stream=stream)  # a stream's error status is raised by create()
    exc = info.value
    assert type(exc) is getattr(sdk.module, row.error)
    assert_error_body(sdk, exc, row.type_, row.code)
    if sdk.provider == "openai":
        assert row.message in exc.message
        assert exc.request_id is not None and exc.request_id.startswith("req_")
    else:
        assert row.message in exc.body["error"]["message"]
    assert [a.status for a in chaos.attempts] == [exc.status_code]
    assert chaos.attempts[0].stream is stream
    if row.param is not None:
        assert exc.param == row.param


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("sdk", SDKS[:2], ids=lambda sdk: sdk.id)
def test_openai_outage_status_is_an_internal_server_error(sdk: Sdk, status: int) -> None:
    with (
        sdk_client(sdk) as client,
        aichaos.inject([{"kind": "outage", "status": status}]) as chaos,
        pytest.raises(openai.InternalServerError) as info,
    ):
        create(sdk, client.with_options(max_retries=0))
    assert info.value.status_code == status
    assert_inner_error_body(info.value, "server_error", None)
    assert [a.status for a in chaos.attempts] == [status]


# --- error bodies that are not JSON, integer codes, replaced headers ---------------------------


@dataclass(frozen=True)
class Page:
    """A gateway's HTML error page in place of the provider's JSON (Cloudflare in front of both
    APIs, nginx in front of proxies): a 5xx, so retried with the SDK's backoff."""

    provider: str
    status: int
    body: str  # the fault's `body`
    marker: str  # the page names its gateway

    @property
    def name(self) -> str:
        return f"{self.body}-{self.status}"


PAGES = [
    Page(provider, status, body, marker)
    for provider in ("openai", "anthropic")
    for status, body, marker in ((524, "html", "cloudflare"), (502, "nginx", "nginx"))
]

# The retry delays the SDKs compute are recorded exactly; the recorder really sleeps a tenth
# of each, so the backoff does not slow the suite (`SdkSleeps`).
SCALE = 0.1


def ask(sdk: Sdk, client: Any, headers: dict[str, str]) -> Any:
    return create(sdk, client, extra_headers=headers)


def run_pages(sdk: Sdk) -> dict[str, Outcome]:
    """Every page of `sdk`'s provider, side by side."""
    cases = {
        row.name: (
            [{"kind": "error", "status": row.status, "body": row.body}],
            functools.partial(
                lambda sdk, client, headers: create(sdk, client, extra_headers=headers), sdk
            ),
        )
        for row in PAGES
        if row.provider == sdk.provider
    }
    with pytest.MonkeyPatch.context() as patch:
        return run_side_by_side(sdk, cases, SdkSleeps(SCALE).install(patch))


outcomes = outcomes_fixture(run_pages)


@pytest.mark.parametrize(("sdk", "row"), rows_for(PAGES))
def test_gateway_html_page_is_an_internal_server_error(
    outcomes: Outcomes, sdk: Sdk, row: Page
) -> None:
    outcome = outcomes(sdk)[row.name]
    exc: Any = outcome.error
    assert type(exc) is sdk.module.InternalServerError
    assert exc.status_code == row.status
    assert isinstance(exc.body, str) and exc.body.lstrip().startswith("<")
    assert row.marker in exc.body.lower()
    assert exc.response.headers["content-type"].startswith("text/html")
    assert exc.response.headers.get_list("content-type") == [exc.response.headers["content-type"]]
    assert exc.type is None
    assert (exc.code if sdk.provider == "openai" else exc.error_code) is None
    assert [a.status for a in outcome.attempts] == [row.status] * 3
    assert_backoff(outcome.attempts, outcome.sleeps, SCALE)  # 5xx: retried twice


@pytest.mark.parametrize("sdk", SDKS, ids=lambda sdk: sdk.id)
def test_replaced_headers_and_an_integer_code(sdk: Sdk) -> None:
    fault = {
        "kind": "error",
        "status": 502,
        "type": "cf_bad_gateway",
        "code": 502,
        "headers": {"content-type": "application/json; charset=utf-8", "x-should-retry": "false"},
    }
    with (
        sdk_client(sdk) as client,
        aichaos.inject([fault]) as chaos,
        pytest.raises(sdk.module.InternalServerError) as info,
    ):
        create(sdk, client)
    exc: Any = info.value
    assert exc.type == "cf_bad_gateway"
    assert exc.response.headers.get_list("content-type") == ["application/json; charset=utf-8"]
    assert len(chaos.attempts) == 1  # x-should-retry: false wins over the 5xx rule
    if sdk.provider == "openai":
        assert isinstance(exc.body, dict) and exc.body["code"] == 502  # sent as given, an integer
        assert exc.code == "502"  # the SDK types `.code` as str


# --- the mock refuses malformed requests as the provider does ----------------------------------


def test_mock_answers_a_missing_field_with_the_providers_400() -> None:
    with (
        aichaos.inject() as chaos,
        openai.OpenAI(api_key=API_KEY) as client,
        pytest.raises(openai.BadRequestError) as info,
    ):
        client.post("/chat/completions", body={"model": GPT}, cast_to=object)
    exc = info.value
    assert exc.code == "missing_required_parameter" and exc.type == "invalid_request_error"
    assert "'messages'" in exc.message
    assert len(chaos.attempts) == 1  # a 400 is not retried


def test_mock_answers_invalid_json_with_the_providers_400() -> None:
    with aichaos.inject(), httpx.Client() as http:
        response = http.post(
            "https://api.anthropic.com/v1/messages",
            content=b'{"model": "claude", "messages": [',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
