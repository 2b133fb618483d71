"""Faults that answer with the provider's own error instead of calling the upstream."""

from __future__ import annotations

import random
from http import HTTPStatus
from typing import ClassVar, Literal

from pydantic import Field

from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.providers.replies import merge_headers
from aichaos.units import Duration
from aichaos.wire.exchange import Reply


class _ErrorFault(Fault):
    terminal: ClassVar[bool] = True


class ErrorFault(_ErrorFault):
    """Any status with the provider's own error body and headers.

    OpenAI `{"error": {message, type, param, code}}`; Anthropic `{"type": "error", "error":
    {type, message}, "request_id"}` (a `code` goes to `error.details.error_code`); Gemini a
    google.rpc.Status. Type and message default to the provider's own for the status; `code`
    is sent as given, a string or an integer (some gateways send `502`). The SDKs map it by
    status (400 `BadRequestError`, 401 `AuthenticationError`, 404 `NotFoundError`, 429
    `RateLimitError`, 5xx `InternalServerError`; anthropic 503/504/529 have their own
    subclasses) and retry 408, 409, 429 and 5xx twice. With `retry_after` they wait that long
    between attempts: openai (>= 2.52) does not retry at all past 120 s, anthropic waits any
    delay. The wait goes out as the provider sends it: Anthropic (and Gemini) `retry-after` in
    whole seconds, rounded up (0.2 s is sent as `1`, and the anthropic SDK sleeps 1 s); Azure
    the same plus `retry-after-ms` with the exact wait, which the openai SDK reads first;
    OpenAI `retry-after` with the precision given and no `retry-after-ms` (api.openai.com is
    not known to send one; see `OpenAIProvider.retry_after_headers`). `body: html` answers
    with the page a CDN puts in front of the provider (Cloudflare-style, `text/html`,
    `server: cloudflare`, a `cf-ray`; reports show 502, 520, 521, 524), `body: nginx` with an
    nginx-style page (502, 504); any other text is sent as the body itself. The openai SDK
    then raises `InternalServerError` (5xx) with the page as `.body` and no `.code`, after its
    retries. A `headers:` entry replaces a default header of the same name (`content-type`
    included).
    """

    summary: ClassVar[str] = "any status with the provider's own error body and headers"
    kind: Literal["error"] = "error"
    status: int = Field(500, ge=400, le=599, description="HTTP status to answer with.")
    type: str | None = Field(None, description="Error type (default: the provider's for status).")
    code: str | int | None = Field(
        None, description="Error code, where the provider has one; sent as given (str or int)."
    )
    message: str | None = Field(None, description="Error message (default: the provider's).")
    retry_after: Duration | None = Field(
        None,
        description="Send the provider's wait: retry-after (Anthropic: whole seconds, rounded"
        " up; Azure adds retry-after-ms).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Response headers; each replaces a default one."
    )
    body: str | None = Field(
        None,
        description="Instead of the provider's JSON: `html` (a Cloudflare-style gateway page),"
        " `nginx` (an nginx-style page) or the literal body text.",
    )

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        retry = (
            [] if self.retry_after is None else plan.provider.retry_after_headers(self.retry_after)
        )
        headers = [*retry, *self.headers.items()]
        if self.body is not None:
            page_headers, page = gateway_page(self.status, self.body, rng)
            plan.reply = Reply(self.status, merge_headers(page_headers, headers), [page])
            return True
        plan.reply = plan.provider.error(
            plan.req,
            self.status,
            type=self.type,
            code=self.code,
            message=self.message,
            headers=headers,
        )
        return True

    def label(self) -> str:
        return f"error({self.status})"


_CLOUDFLARE_TITLES = {
    502: "Bad gateway",
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}


def gateway_page(
    status: int, style: str, rng: random.Random
) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of a page a gateway answers with instead of the provider: `html`
    (Cloudflare-style), `nginx`, or any other text as a literal body."""
    phrase = _phrase(status)
    if style == "html":
        ray = f"{rng.getrandbits(64):016x}"
        title = _CLOUDFLARE_TITLES.get(status, phrase)
        page = (
            '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n'
            f"<title>api.openai.com | {status}: {title}</title>\n</head>\n<body>\n"
            f'<div id="cf-error-details">\n<h1>{title}</h1>\n<span>Error code {status}</span>\n'
            f"<p>Cloudflare Ray ID: <strong>{ray}</strong> &bull; Performance &amp; security by"
            " Cloudflare</p>\n</div>\n</body>\n</html>\n"
        )
        headers = [
            ("content-type", "text/html; charset=UTF-8"),
            ("server", "cloudflare"),
            ("cf-ray", f"{ray}-SJC"),
        ]
        return headers, page.encode()
    if style == "nginx":
        page = (
            f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return [("content-type", "text/html"), ("server", "nginx")], page.encode()
    return [("content-type", "text/plain; charset=utf-8")], style.encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Outage(_ErrorFault):
    """The provider's typical server-side failure.

    OpenAI: 500 `server_error` (`status: 503` for its overloaded variant). Anthropic: 529
    `overloaded_error` "Overloaded", raised as `OverloadedError` (`status: 500` gives
    `api_error`). Gemini: 503 `UNAVAILABLE` "The model is overloaded". The openai and anthropic
    SDKs retry twice with their exponential backoff (about 0.5 s, then 1 s) and raise; the
    Gemini SDK does not retry unless configured to.
    """

    summary: ClassVar[str] = (
        "server-side failure: OpenAI 500/503, Anthropic 529 overloaded or 500, Gemini 503"
    )
    kind: Literal["outage"] = "outage"
    status: int | None = Field(
        None, ge=500, le=599, description="Status (default: the provider's most common one)."
    )

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.outage(plan.req, self.status)
        return True


class RateLimit(_ErrorFault):
    """A 429 that clears after `retry_after`, with the provider's rate-limit headers.

    OpenAI: `rate_limit_exceeded` of type `requests` or `tokens`, `x-ratelimit-*` headers
    (resets as Go durations) and `retry-after` (no `retry-after-ms`); Azure: `retry-after` in
    whole seconds and `retry-after-ms`. Anthropic: `rate_limit_error`, `anthropic-ratelimit-*`
    headers (resets as RFC 3339 times) and `retry-after` in whole seconds, rounded up, as
    Anthropic sends it (a 250 ms wait makes the anthropic SDK sleep 1 s). Gemini:
    `RESOURCE_EXHAUSTED` with a `RetryInfo` delay. The openai and anthropic SDKs sleep the
    server's delay before each retry (openai >= 2.52 gives up at once past 120 s); with
    `retry_after: null` no delay is sent and their own backoff applies. Use `first: N` for a
    storm that clears.
    """

    summary: ClassVar[str] = "429 with the provider's retry-after and rate-limit headers"
    kind: Literal["rate_limit"] = "rate_limit"
    scope: Literal["requests", "tokens"] = Field("requests", description="Which limit was hit.")
    retry_after: Duration | None = Field(
        1.0, description="Seconds the client should wait (null: send no retry-after)."
    )
    limit: int = Field(500, ge=1, description="The limit reported in the headers.")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.rate_limited(
            plan.req, scope=self.scope, retry_after=self.retry_after, limit=self.limit
        )
        return True

    def label(self) -> str:
        return f"rate_limit({self.scope})"


class QuotaExhausted(_ErrorFault):
    """A 429 (or the provider's equivalent) that waiting will not clear.

    OpenAI: 429 `insufficient_quota`, with no `retry-after`, as documented. The SDK looks only at
    the status and retries it twice like any 429, so a well-built app checks
    `code == "insufficient_quota"` and stops. Azure: its 429 with `retry-after: 86400` (openai
    >= 2.52 does not retry that). Anthropic: the monthly spend limit, a 429 whose
    `error.details.error_code` is `enforced_spend_limit_reached` (anthropic >= 2 raises
    `EnforcedSpendLimitReachedError`, a `RateLimitError`, and still retries it); or
    `variant: credit_balance`, the 400 "Your credit balance is too low" (not retried). Gemini:
    429 `RESOURCE_EXHAUSTED` with a per-day `QuotaFailure` and no `RetryInfo`.
    """

    summary: ClassVar[str] = "quota/credit exhausted, exactly as the provider sends it"
    kind: Literal["quota_exhausted"] = "quota_exhausted"
    variant: Literal["spend_limit", "credit_balance"] | None = Field(
        None,
        description="Anthropic only: spend_limit (429, the default) or credit_balance (400).",
    )

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.quota_exhausted(plan.req, self.variant)
        return True


class ContextLength(_ErrorFault):
    """The provider's context-length-exceeded error.

    OpenAI: 400 `invalid_request_error`, code `context_length_exceeded`, param `messages`
    ("This model's maximum context length is ..."). Anthropic: 400 `invalid_request_error`
    "prompt is too long: N tokens > M maximum". Gemini: 400 `INVALID_ARGUMENT`.
    `BadRequestError` in both SDKs, never retried.
    """

    summary: ClassVar[str] = "the provider's context-length-exceeded error"
    kind: Literal["context_length"] = "context_length"
    limit: int = Field(128000, ge=1, description="The model's context window, in tokens.")
    tokens: int | None = Field(None, description="Tokens reported (default: limit + ~10%).")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        tokens = self.tokens if self.tokens is not None else self.limit + self.limit // 10 + 1
        plan.reply = plan.provider.context_length(plan.req, limit=self.limit, tokens=tokens)
        return True


class AuthError(_ErrorFault):
    """The provider's invalid-API-key answer.

    OpenAI: 401 `invalid_api_key`. Anthropic: 401 `authentication_error` "invalid x-api-key".
    Gemini: 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID` (what Google sends for a bad
    key). `AuthenticationError` in the openai and anthropic SDKs, never retried.
    """

    summary: ClassVar[str] = "401 (Gemini: 400 API_KEY_INVALID) with the provider's body"
    kind: Literal["auth_error"] = "auth_error"

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.auth_error(plan.req)
        return True


class ModelNotFound(_ErrorFault):
    """The provider's unknown-model answer.

    404 naming the requested model: OpenAI `model_not_found`, Anthropic `not_found_error`
    "model: ...", Gemini `NOT_FOUND`. `NotFoundError`, never retried.
    """

    summary: ClassVar[str] = "404 with the provider's body naming the requested model"
    kind: Literal["model_not_found"] = "model_not_found"

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.model_not_found(plan.req)
        return True
