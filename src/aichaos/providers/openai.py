"""OpenAI and Azure OpenAI providers: error bodies, headers, rate limits.

The dialects live in `openai_chat`, `openai_responses` and `openai_embeddings`.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any
from urllib.parse import parse_qs

from aichaos.providers._common import go_duration, new_id, seconds_header
from aichaos.providers.base import Dialect, Headers
from aichaos.providers.openai_chat import ChatCompletions
from aichaos.providers.openai_embeddings import Embeddings, Models
from aichaos.providers.openai_responses import Responses, failed_events
from aichaos.providers.provider import Provider, SdkEnvironment
from aichaos.providers.replies import ErrorAnswer, whole_seconds
from aichaos.wire.exchange import Reply, RequestInfo
from aichaos.wire.sse import SSEEvent

__all__ = [
    "AzureOpenAIProvider",
    "ChatCompletions",
    "Embeddings",
    "Models",
    "OpenAIProvider",
    "Responses",
]

_OPENAI_DEFAULTS: dict[int, tuple[str | None, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", None, "Not found."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: (
        "server_error",
        None,
        "The server had an error processing your request. Sorry about that! You can retry your "
        "request, or contact us through our help center at help.openai.com if you keep seeing "
        "this error.",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: (
        "server_error",
        None,
        "The engine is currently overloaded, please try again later",
    ),
    504: ("server_error", None, "Gateway timeout."),
}

QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)


class OpenAIProvider(Provider):
    """api.openai.com: `{"error": {message, type, param, code}}`, `x-request-id`, x-ratelimit-*."""

    answers = {
        "outage": ErrorAnswer(500),
        "auth_error": ErrorAnswer(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided: sk-ab***cd. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        ),
        "model_not_found": ErrorAnswer(
            404,
            "invalid_request_error",
            "model_not_found",
            "The model `{model}` does not exist or you do not have access to it.",
        ),
        "context_length": ErrorAnswer(
            400,
            "invalid_request_error",
            "context_length_exceeded",
            "This model's maximum context length is {limit} tokens. However, your messages "
            "resulted in {tokens} tokens. Please reduce the length of the messages.",
            param="messages",
        ),
        # Exactly the documented body; no retry-after and no x-should-retry (unverified that
        # OpenAI sends either), so the SDK retries it like any 429, as it does live.
        "quota_exhausted": ErrorAnswer(
            429, "insufficient_quota", "insufficient_quota", QUOTA_MESSAGE
        ),
        "invalid_json": ErrorAnswer(
            400,
            "invalid_request_error",
            None,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
            "this, please contact us through our help center at help.openai.com.)",
        ),
        "missing_field": ErrorAnswer(
            400,
            "invalid_request_error",
            "missing_required_parameter",
            "Missing required parameter: '{field}'.",
        ),
        "not_found": ErrorAnswer(
            404, "invalid_request_error", None, "Invalid URL ({method} {path})"
        ),
    }

    name = "openai"
    # The 500 `server_error` of the error-code table (provider-wire-formats.md).
    stream_error = ("server_error", "The server had an error while processing your request.")
    name_hints: tuple[str, ...] = ("openai", "gpt")
    default_host = "api.openai.com"
    sdk_env = SdkEnvironment("OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY", "sk-aichaos-mock")

    def __init__(self) -> None:
        self.dialects: tuple[Dialect, ...] = (
            ChatCompletions(),
            Responses(),
            Embeddings(),
            Models(),
        )

    # --- headers --------------------------------------------------------------
    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return [("x-request-id", new_id("req_", 16)), *self._fixed_headers]

    @functools.cached_property
    def _fixed_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers that are the same on every answer (built once: the mock's hot path)."""
        return (
            ("openai-processing-ms", "42"),
            ("openai-version", "2020-10-01"),
            *self.rate_limit_headers(
                scope="requests", limit=10000, remaining=9999, reset_seconds=0.006
            ),
            *self.rate_limit_headers(
                scope="tokens", limit=30000000, remaining=29999000, reset_seconds=0.002
            ),
        )

    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        return [
            (f"x-ratelimit-limit-{scope}", str(limit)),
            (f"x-ratelimit-remaining-{scope}", str(remaining)),
            (f"x-ratelimit-reset-{scope}", go_duration(reset_seconds)),
        ]

    def retry_after_headers(self, seconds: float) -> list[tuple[str, str]]:
        """`retry-after` only, with the precision given (the openai SDK reads decimal seconds).

        No `retry-after-ms`: OpenAI documents only the `x-ratelimit-*` headers, a 429 captured
        from api.openai.com (openai/openai-node#1477) carries neither `retry-after` nor
        `retry-after-ms`, and the SDKs read `retry-after-ms` only as "proactive support" for a
        header that "may not be standard" (openai-node `retryRequest`). Azure sends it.
        """
        return [("retry-after", seconds_header(seconds))]

    # --- errors ---------------------------------------------------------------
    def error_body(self, fields: ErrorAnswer, headers: list[tuple[str, str]]) -> dict[str, Any]:
        default_type, default_code, default_message = _OPENAI_DEFAULTS.get(
            fields.status,
            ("server_error", None, "Server error.")
            if fields.status >= 500
            else ("invalid_request_error", None, "Request failed."),
        )
        return {
            "error": {
                "message": fields.message if fields.message is not None else default_message,
                "type": fields.type if fields.type is not None else default_type,
                "param": fields.param,
                "code": fields.code if fields.code is not None else default_code,
            }
        }

    def rate_limit_answer(
        self, req: RequestInfo, *, scope: str, limit: int, wait: float
    ) -> ErrorAnswer:
        unit = "tokens per min (TPM)" if scope == "tokens" else "requests per min (RPM)"
        message = (
            f"Rate limit reached for {req.model or 'gpt-4o'} in organization org-aichaos on "
            f"{unit}: Limit {limit}, Used {limit}, Requested 1. Please try again in "
            f"{go_duration(wait)}. Visit https://platform.openai.com/account/rate-limits to "
            "learn more."
        )
        return ErrorAnswer(429, scope, "rate_limit_exceeded", message)

    def stream_error_event(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> SSEEvent:
        return self.stream_error_events(req, type=type, message=message)[0]

    def stream_failure_events(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> list[SSEEvent]:
        if req.path.endswith("/responses"):
            return failed_events(type, message)[1:]  # `response.failed`
        return self.stream_error_events(req, type=type, message=message)

    def stream_error_events(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> list[SSEEvent]:
        if req.path.endswith("/responses"):
            return failed_events(type, message)[:1]  # the flat `error` event
        return [
            SSEEvent.of({"error": {"message": message, "type": type, "param": None, "code": None}})
        ]


AZURE_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI on `{resource}.openai.azure.com` or `{resource}.cognitiveservices.azure.com`
    (Azure OpenAI and AI Foundry resources, any resource name: learn.microsoft.com/azure/ai-
    foundry/openai/reference); `example-resource.openai.azure.com` stands for them in examples.

    Differences from OpenAI: `{"error": {"code": "429", "message": ...}}` rate limits with
    `retry-after`/`retry-after-ms`, content-filter 400s with `innererror`, Azure request ids.
    """

    name = "azure"
    name_hints = ("azure",)
    default_host = "example-resource.openai.azure.com"
    hosts = ("*.openai.azure.com", "*.cognitiveservices.azure.com")
    sdk_env = SdkEnvironment("AZURE_OPENAI_ENDPOINT", "", "AZURE_OPENAI_API_KEY", "aichaos-mock")

    def __init__(self) -> None:
        self.dialects = (ChatCompletions(azure=True), Embeddings())

    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return [("apim-request-id", str(uuid.uuid4())), ("x-ms-region", "East US")]

    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        # Azure is seen sending remaining counts; its reset header's format is unverified.
        return [(f"x-ratelimit-remaining-{scope}", str(remaining))]

    @staticmethod
    def _operation(req: RequestInfo) -> str:
        return "Embeddings_Create" if req.path.endswith("/embeddings") else "ChatCompletions_Create"

    @staticmethod
    def _api_version(req: RequestInfo) -> str:
        return parse_qs(req.query).get("api-version", [AZURE_API_VERSION])[0]

    def _azure_429(self, req: RequestInfo, scope: str, seconds: float) -> Reply:
        whole = whole_seconds(seconds)  # as in its `retry-after`
        kind = "token rate limit" if scope == "tokens" else "call rate limit"
        message = (
            f"Requests to the {self._operation(req)} Operation under Azure OpenAI API version "
            f"{self._api_version(req)} have exceeded {kind} of your current OpenAI S0 pricing "
            f"tier. Please retry after {whole} seconds. Please go here: "
            "https://aka.ms/oai/quotaincrease if you would like to further increase the default "
            "rate limit."
        )
        headers = [
            *self.response_headers(req),
            *self.rate_limit_headers(scope=scope, limit=0, remaining=0, reset_seconds=seconds),
            *self.retry_after_headers(seconds),
        ]
        return Reply.json(429, {"error": {"code": "429", "message": message}}, headers)

    def retry_after_headers(self, seconds: float) -> list[tuple[str, str]]:
        """`retry-after` in whole seconds, rounded up (its message says "Please retry after N
        seconds"), and `retry-after-ms` with the exact wait, which the openai SDK reads first
        (`_parse_retry_after_header`); both are seen on Azure's 429s
        (provider-wire-formats.md, Azure)."""
        return [
            ("retry-after", whole_seconds(seconds)),
            ("retry-after-ms", str(round(seconds * 1000))),
        ]

    def rate_limited(
        self, req: RequestInfo, *, scope: str, retry_after: float | None, limit: int
    ) -> Reply:
        return self._azure_429(req, scope, retry_after if retry_after is not None else 1.0)

    def quota_exhausted(self, req: RequestInfo, variant: str | None = None) -> Reply:
        # Azure has no `insufficient_quota`; an exhausted quota shows as a 429 asking to wait
        # a day (seen in reports). openai>=2.52 does not retry a retry-after above 120 s.
        return self._azure_429(req, "tokens", 86400)

    def auth_error(self, req: RequestInfo) -> Reply:
        message = (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource."
        )
        return Reply.json(
            401, {"error": {"code": "401", "message": message}}, self.response_headers(req)
        )

    def model_not_found(self, req: RequestInfo) -> Reply:
        message = (
            "The API deployment for this resource does not exist. If you created the deployment "
            "within the last 5 minutes, please wait a moment and try again."
        )
        return Reply.json(
            404,
            {"error": {"code": "DeploymentNotFound", "message": message}},
            self.response_headers(req),
        )

    def content_filter_error(self, req: RequestInfo, reason: str | None = None) -> Reply | None:
        """The prompt filter's 400. Default: `innererror.code` `ResponsibleAIPolicyViolation`
        (the documented shape). `reason="ContentFiltered"`: the variant seen in reports, with a
        typographic apostrophe (U+2019) in the message, which litellm 1.110 does not recognise
        as a content-policy error (a plain `BadRequestError`, no content-policy fallback)."""
        variant = reason == "ContentFiltered"
        apostrophe = "\u2019" if variant else "'"
        body = {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure "
                f"OpenAI{apostrophe}s content management policy. Please modify your prompt and "
                "retry. To learn more about our content filtering policies please read our "
                "documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ContentFiltered" if variant else "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "hate": {"filtered": False, "severity": "safe"},
                        "jailbreak": {"filtered": False, "detected": False},
                        "self_harm": {"filtered": False, "severity": "safe"},
                        "sexual": {"filtered": False, "severity": "safe"},
                        "violence": {"filtered": True, "severity": "medium"},
                    },
                },
            }
        }
        return Reply.json(400, body, self.response_headers(req))
