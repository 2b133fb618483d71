"""Google Gemini `generateContent` / `streamGenerateContent` (v1beta and v1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from aichaos.providers._common import (
    as_dict,
    as_int,
    as_list,
    chunks_of,
    clone,
    dump_arguments,
    merge_headers,
    new_id,
    parse_arguments,
)
from aichaos.providers.base import (
    Completion,
    Dialect,
    EventRole,
    Finish,
    Provider,
    SdkEnvironment,
    StreamEnd,
    ToolCall,
    Usage,
)
from aichaos.wire.exchange import Reply, RequestInfo
from aichaos.wire.sse import SSEEvent

FINISH_REASONS: dict[str, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "tool_calls": "STOP",
}

_PATH = re.compile(r"/models/[^/:]+:(generateContent|streamGenerateContent)$")

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_CODES = {name: code for code, name in STATUS_NAMES.items()}

_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}


def _usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.total,
    }


def _call_part(call: ToolCall) -> dict[str, Any]:
    return {"functionCall": {"name": call.name, "args": parse_arguments(call.arguments)}}


class GenerateContent(Dialect):
    """generateContent and streamGenerateContent; a stream is `data:` chunks, no `[DONE]`."""

    name = "generate_content"

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and _PATH.search(path) is not None

    def _chunk(
        self, completion: Completion, parts: list[Any], response_id: str, final: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        body: dict[str, Any] = {"candidates": [candidate]}
        if final:
            candidate["finishReason"] = FINISH_REASONS[completion.finish]
            body["usageMetadata"] = _usage_json(completion.usage)
        body["modelVersion"] = completion.model
        body["responseId"] = response_id
        return body

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        parts: list[Any] = []
        if completion.text or not completion.tool_calls:
            parts.append({"text": completion.text})
        parts += [_call_part(c) for c in completion.tool_calls]
        return self._chunk(completion, parts, new_id("", 11), final=True)

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        response_id = new_id("", 11)
        for piece in chunks_of(completion):
            yield SSEEvent.of(self._chunk(completion, [{"text": piece}], response_id, False))
        if completion.tool_calls:
            parts = [_call_part(c) for c in completion.tool_calls]
            yield SSEEvent.of(self._chunk(completion, parts, response_id, False))
        yield SSEEvent.of(self._chunk(completion, [{"text": ""}], response_id, True))

    # --- reading --------------------------------------------------------------
    def usage_of_body(self, body: Any) -> Usage | None:
        meta = as_dict(body).get("usageMetadata")
        if not isinstance(meta, dict):
            return None
        return Usage(as_int(meta.get("promptTokenCount")), as_int(meta.get("candidatesTokenCount")))

    def usage_of_event(self, event: SSEEvent) -> Usage | None:
        return self.usage_of_body(event.json)

    @staticmethod
    def _candidate(body: Any) -> dict[str, Any]:
        candidates = as_list(as_dict(body).get("candidates"))
        return as_dict(candidates[0]) if candidates else {}

    def _parts(self, body: Any) -> list[Any]:
        return as_list(as_dict(self._candidate(body).get("content")).get("parts"))

    # --- non-streaming edits --------------------------------------------------
    def text_of(self, body: Any) -> str:
        return "".join(str(p["text"]) for p in self._parts(body) if "text" in as_dict(p))

    def with_text(self, body: Any, text: str) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if not candidate:
            return new
        content = candidate.setdefault("content", {"role": "model", "parts": []})
        others = [p for p in as_list(content.get("parts")) if "text" not in as_dict(p)]
        content["parts"] = [{"text": text}, *others]
        return new

    def with_finish(self, body: Any, finish: Finish) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if candidate:
            candidate["finishReason"] = FINISH_REASONS[finish]
        return new

    def tool_calls_of(self, body: Any) -> list[ToolCall]:
        calls = []
        for part in self._parts(body):
            call = as_dict(as_dict(part).get("functionCall"))
            if call:
                name = str(call.get("name", ""))
                calls.append(
                    ToolCall(str(call.get("id", name)), name, dump_arguments(call.get("args", {})))
                )
        return calls

    def with_tool_calls(self, body: Any, calls: list[ToolCall]) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if not candidate:
            return new
        content = candidate.setdefault("content", {"role": "model", "parts": []})
        kept = [p for p in as_list(content.get("parts")) if "functionCall" not in as_dict(p)]
        content["parts"] = kept + [_call_part(c) for c in calls]
        return new

    # --- stream edits ---------------------------------------------------------
    def classify(self, event: SSEEvent) -> EventRole:
        payload = event.json
        if not isinstance(payload, dict) or "error" in payload:
            return EventRole.OTHER
        if self._candidate(payload).get("finishReason"):
            return EventRole.FINISH
        parts = self._parts(payload)
        if any("functionCall" in as_dict(p) for p in parts):
            return EventRole.TOOL_START
        if any("text" in as_dict(p) for p in parts):
            return EventRole.TEXT
        if "usageMetadata" in payload:
            return EventRole.USAGE
        return EventRole.OTHER

    def stream_end(self, event: SSEEvent, role: EventRole) -> StreamEnd | None:
        """No terminator: the last chunk carries `finishReason`; in-band error a chunk
        `{"error": {...}}` (provider-wire-formats.md §Gemini streams)."""
        if role is EventRole.FINISH:
            return "complete"
        payload = event.json
        return "error" if isinstance(payload, dict) and "error" in payload else None

    def event_text(self, event: SSEEvent) -> str | None:
        texts = [str(p["text"]) for p in self._parts(event.json) if "text" in as_dict(p)]
        return "".join(texts) if texts else None

    def event_with_text(self, event: SSEEvent, text: str) -> SSEEvent:
        if self.event_text(event) is None:
            return event
        return event.replaced(self.with_text(event.json, text))

    def event_with_finish(self, event: SSEEvent, finish: Finish) -> SSEEvent:
        if not self._candidate(event.json):
            return event
        return event.replaced(self.with_finish(event.json, finish))

    def _call_edit(self, event: SSEEvent, key: str, value: Any) -> SSEEvent:
        payload = clone(event.json)
        for part in self._parts(payload):
            call = as_dict(part).get("functionCall")
            if isinstance(call, dict):
                call[key] = value
                return event.replaced(payload)
        return event

    def event_tool_args(self, event: SSEEvent) -> str | None:
        # Gemini sends a call's arguments whole, with the call (a TOOL_START event).
        for part in self._parts(event.json):
            call = as_dict(part).get("functionCall")
            if isinstance(call, dict):
                return dump_arguments(call.get("args", {}))
        return None

    def event_with_tool_name(self, event: SSEEvent, name: str) -> SSEEvent:
        return self._call_edit(event, "name", name)

    def event_with_tool_args(self, event: SSEEvent, arguments: str) -> SSEEvent:
        # Gemini sends arguments whole, as an object; invalid JSON stays a raw string.
        return self._call_edit(event, "args", parse_arguments(arguments))


class GeminiProvider(Provider):
    """generativelanguage.googleapis.com: google.rpc.Status error bodies.

    Gemini on Vertex AI (`aiplatform.googleapis.com`, regional `{region}-aiplatform.googleapis.com`,
    used by google-genai with `vertexai=True`) speaks the same `generateContent` format under
    `/v1*/projects/{p}/locations/{l}/publishers/google/models/{m}:...`, so it is claimed too.
    """

    name = "gemini"
    default_host = "generativelanguage.googleapis.com"
    hosts = (default_host, "aiplatform.googleapis.com", "*-aiplatform.googleapis.com")
    sdk_env = SdkEnvironment("GOOGLE_GEMINI_BASE_URL", "", "GEMINI_API_KEY", "aichaos-mock")

    def __init__(self) -> None:
        self.dialects: tuple[Dialect, ...] = (GenerateContent(),)

    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        return []

    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        return []  # Gemini sends no rate-limit headers; RetryInfo is in the body.

    def _status_reply(
        self,
        req: RequestInfo,
        code: int,
        message: str,
        status: str | None = None,
        details: list[Any] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        error: dict[str, Any] = {
            "code": code,
            "message": message,
            "status": status or STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "UNKNOWN"),
        }
        if details:
            error["details"] = details
        return Reply.json(
            code, {"error": error}, merge_headers(self.response_headers(req), headers)
        )

    def error(
        self,
        req: RequestInfo,
        status: int,
        *,
        type: str | None = None,
        code: str | None = None,
        message: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        default = _MESSAGES.get(
            status, "Internal error encountered." if status >= 500 else "Request failed."
        )
        details = None
        if code:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                }
            ]
        return self._status_reply(req, status, message or default, type, details, headers)

    def outage(self, req: RequestInfo, status: int | None = None) -> Reply:
        return self.error(req, status or 503)

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
                    "retryDelay": f"{max(0, round(retry_after))}s",
                }
            )
        message = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits."
        )
        return self._status_reply(req, 429, message, details=details)

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
        return self._status_reply(req, 429, message, details=[failure])

    def context_length(self, req: RequestInfo, *, limit: int, tokens: int) -> Reply:
        message = (
            f"The input token count ({tokens}) exceeds the maximum number of tokens "
            f"allowed ({limit})."
        )
        return self._status_reply(req, 400, message)

    def auth_error(self, req: RequestInfo) -> Reply:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
        ]
        return self._status_reply(
            req, 400, "API key not valid. Please pass a valid API key.", details=details
        )

    def model_not_found(self, req: RequestInfo) -> Reply:
        version = req.path.strip("/").split("/", 1)[0] or "v1beta"
        message = (
            f"models/{req.model or ''} is not found for API version {version}, or is not "
            "supported for generateContent. Call ListModels to see the list of available "
            "models and their supported methods."
        )
        return self._status_reply(req, 404, message)

    def stream_error_event(self, req: RequestInfo, *, type: str, message: str) -> SSEEvent:
        code = _CODES.get(type, 500)
        status = type if type in _CODES else "INTERNAL"
        return SSEEvent.of({"error": {"code": code, "message": message, "status": status}})
