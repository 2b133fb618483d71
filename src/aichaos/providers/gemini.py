"""Google Gemini `generateContent` / `streamGenerateContent` (v1beta and v1): the provider
(errors as `google.rpc.Status`, quotas, blocked prompts); the dialect is gemini_content.py."""

from __future__ import annotations

from typing import Any

from aichaos.providers._common import new_id
from aichaos.providers.base import Dialect, Headers
from aichaos.providers.gemini_content import GenerateContent
from aichaos.providers.gemini_wire import (
    BLOCKED_RATINGS,
    STATUS_CODES,
    STATUS_MESSAGES,
    proto_duration,
    status_body,
)
from aichaos.providers.provider import Provider, SdkEnvironment
from aichaos.providers.replies import ErrorAnswer, json_reply
from aichaos.wire.exchange import Reply, RequestInfo
from aichaos.wire.sse import SSEEvent


class GeminiProvider(Provider):
    """generativelanguage.googleapis.com: google.rpc.Status error bodies.

    Gemini on Vertex AI (`aiplatform.googleapis.com`, regional `{region}-aiplatform.googleapis.com`,
    used by google-genai with `vertexai=True`) speaks the same `generateContent` format under
    `/v1*/projects/{p}/locations/{l}/publishers/google/models/{m}:...`, so it is claimed too.
    """

    answers = {
        "outage": ErrorAnswer(503),
        "context_length": ErrorAnswer(
            400,
            message="The input token count ({tokens}) exceeds the maximum number of tokens "
            "allowed ({limit}).",
        ),
        "model_not_found": ErrorAnswer(
            404,
            message="models/{model} is not found for API version {version}, or is not supported "
            "for generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        ),
        "invalid_json": ErrorAnswer(
            400, message="Invalid JSON payload received. Unexpected token."
        ),
        "missing_field": ErrorAnswer(
            400, message="* GenerateContentRequest.{field}: {field} is not specified"
        ),
    }

    name = "gemini"
    # 503 UNAVAILABLE, google.rpc.Status words (provider-wire-formats.md).
    stream_error = ("UNAVAILABLE", "The model is overloaded. Please try again later.")
    name_hints = ("gemini", "google")
    default_host = "generativelanguage.googleapis.com"
    hosts = (default_host, "aiplatform.googleapis.com", "*-aiplatform.googleapis.com")
    sdk_env = SdkEnvironment("GOOGLE_GEMINI_BASE_URL", "", "GEMINI_API_KEY", "aichaos-mock")

    def __init__(self) -> None:
        self.dialects: tuple[Dialect, ...] = (GenerateContent(),)

    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return []

    def template_values(self, req: RequestInfo) -> dict[str, str]:
        version = req.path.strip("/").split("/", 1)[0] or "v1beta"
        return {**super().template_values(req), "version": version}

    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        return []  # Gemini sends no rate-limit headers; RetryInfo is in the body.

    def _status_reply(self, req: RequestInfo, code: int, message: str, details: list[Any]) -> Reply:
        """A `google.rpc.Status` error answer with `details`."""
        body = status_body(code, message, None, details)
        return json_reply(code, body, self.response_headers(req))

    def error_body(self, fields: ErrorAnswer, headers: list[tuple[str, str]]) -> dict[str, Any]:
        status = fields.status
        default = STATUS_MESSAGES.get(
            status, "Internal error encountered." if status >= 500 else "Request failed."
        )
        details = None
        if fields.code:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": fields.code,
                    "domain": "googleapis.com",
                }
            ]
        return status_body(status, fields.message or default, fields.type, details)

    @staticmethod
    def _quota_failure(
        req: RequestInfo, quota_id: str, metric: str, value: int | None = None
    ) -> dict[str, Any]:
        violation: dict[str, Any] = {
            "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": req.model or ""},
        }
        if value is not None:
            violation["quotaValue"] = str(value)
        return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}

    def rate_limited(
        self, req: RequestInfo, *, scope: str, retry_after: float | None, limit: int
    ) -> Reply:
        metric, quota = (
            (
                "generate_content_free_tier_input_token_count",
                "GenerateContentInputTokensPerModelPerMinute-FreeTier",
            )
            if scope == "tokens"
            else (
                "generate_content_free_tier_requests",
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            )
        )
        details: list[Any] = [self._quota_failure(req, quota, metric, limit)]
        if retry_after is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": proto_duration(retry_after),
                }
            )
        message = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits."
        )
        return self._status_reply(req, 429, message, details)

    def quota_exhausted(self, req: RequestInfo, variant: str | None = None) -> Reply:
        # A per-day quota: same 429 shape, without a RetryInfo a client could wait out.
        failure = self._quota_failure(
            req,
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "generate_content_free_tier_requests",
        )
        message = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits."
        )
        return self._status_reply(req, 429, message, [failure])

    def auth_error(self, req: RequestInfo) -> Reply:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
        ]
        message = "API key not valid. Please pass a valid API key."
        return self._status_reply(req, 400, message, details)

    def content_filter_error(self, req: RequestInfo, reason: str | None = None) -> Reply | None:
        """A blocked prompt: a 200 with `promptFeedback.blockReason` and no `candidates`
        (google-genai: `response.candidates is None`), streamed as one chunk on a stream."""
        tokens = max(1, len(GenerateContent().read_prompt(req.json_object).all_text.split()))
        body = {
            "promptFeedback": {
                "blockReason": reason or "SAFETY",
                "safetyRatings": [dict(r) for r in BLOCKED_RATINGS],
            },
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
            "modelVersion": req.model or "",
            "responseId": new_id("", 11),
        }
        headers = self.response_headers(req)
        if not req.stream:
            return Reply.json(200, body, headers)
        content_type, parts = self.dialects[0].stream_framing(req, [SSEEvent.of(body)])
        return Reply(200, [("content-type", content_type), *headers], list(parts))

    def stream_error_event(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> SSEEvent:
        code = STATUS_CODES.get(type, 500)
        status = type if type in STATUS_CODES else "INTERNAL"
        return SSEEvent.of({"error": {"code": code, "message": message, "status": status}})
