"""Google Gemini `generateContent` / `streamGenerateContent` (v1beta and v1)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from typing import Any

from aichaos.providers._common import (
    chunks_of,
    content_text,
    dump_arguments,
    new_id,
    parse_arguments,
    positive_int,
)
from aichaos.providers._json import as_dict, as_int, as_list, clone
from aichaos.providers.base import (
    Completion,
    Dialect,
    EventRole,
    Finish,
    FinishWords,
    Headers,
    MalformedToolCall,
    Prompt,
    StreamEnd,
    Tool,
    ToolCall,
    Usage,
)
from aichaos.providers.provider import Provider, SdkEnvironment
from aichaos.providers.replies import ErrorAnswer, json_reply
from aichaos.wire.exchange import Part, Pause, Reply, RequestInfo
from aichaos.wire.sse import SSEEvent

FILTER_REASONS = ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "OTHER")
"""finishReason values (google-genai `types.FinishReason`) that end an answer as a filter does."""
BLOCK_REASONS = ("SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "JAILBREAK")
"""promptFeedback.blockReason values (google-genai `types.BlockedReason`)."""

MALFORMED_CALL_MESSAGE = "Malformed function call: {name}"

_BLOCKED_RATINGS: list[dict[str, Any]] = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]
_CITATION = {
    "citationSources": [
        {"startIndex": 0, "endIndex": 128, "uri": "https://example.com/a-published-text"}
    ]
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
    # Gemini leaves out the candidates' count when nothing was generated.
    out: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if usage.output_tokens:
        out["candidatesTokenCount"] = usage.output_tokens
    out["totalTokenCount"] = usage.total
    return out


def _call_part(call: ToolCall) -> dict[str, Any] | None:
    """A functionCall part; None when the arguments do not parse: Gemini's `args` is always an
    object, so such a call never reaches the wire (it ends as MALFORMED_FUNCTION_CALL)."""
    args = parse_arguments(call.arguments or "{}")
    if not isinstance(args, dict):
        return None
    return {"functionCall": {"name": call.name, "args": args}}


def _call_parts(calls: list[ToolCall]) -> list[Any]:
    return [part for part in map(_call_part, calls) if part is not None]


def _finish_candidate(candidate: dict[str, Any], word: str) -> None:
    """Set a finish reason with what Gemini sends beside it (ratings, citations)."""
    candidate["finishReason"] = word
    if word == "SAFETY":
        candidate["safetyRatings"] = [dict(r) for r in _BLOCKED_RATINGS]
    elif word == "RECITATION":
        candidate["citationMetadata"] = clone(_CITATION)
        _set_parts(candidate, [p for p in _parts_of(candidate) if "text" not in as_dict(p)])


def _parts_of(candidate: dict[str, Any]) -> list[Any]:
    return as_list(as_dict(candidate.get("content")).get("parts"))


def _set_parts(candidate: dict[str, Any], parts: list[Any]) -> None:
    """Gemini sends a content without `parts` when there is nothing in it."""
    content = candidate.setdefault("content", {"role": "model"})
    if not isinstance(content, dict):
        return
    if parts:
        content["parts"] = parts
    else:
        content.pop("parts", None)


def _get(data: dict[str, Any], camel: str) -> Any:
    """A request field in camelCase or snake_case: the API accepts both (litellm sends the
    latter)."""
    if camel in data:
        return data[camel]
    return data.get(re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), camel))


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class GenerateContent(Dialect):
    """generateContent and streamGenerateContent; a stream is `data:` chunks, no `[DONE]`."""

    name = "generate_content"
    final_event = "a chunk with finishReason"
    finish_reasons = FinishWords("STOP", "MAX_TOKENS", "SAFETY", "STOP")
    usage_at = ("usageMetadata", "promptTokenCount", "candidatesTokenCount")

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and _PATH.search(path) is not None

    malformed_tool_call: MalformedToolCall = "finish"
    required_fields = ("contents",)
    malformed_tool_call_stream: MalformedToolCall = "finish"

    def read_prompt(self, body: dict[str, Any]) -> Prompt:
        contents = [_d(c) for c in as_list(body.get("contents"))]
        users = [c for c in contents if c.get("role", "user") == "user"]
        config = _d(_get(body, "generationConfig"))
        declarations = [
            _d(f)
            for t in as_list(body.get("tools"))
            for f in as_list(_get(_d(t), "functionDeclarations"))
        ]
        calling = _d(_get(_d(_get(body, "toolConfig")), "functionCallingConfig"))
        allowed = as_list(_get(calling, "allowedFunctionNames"))
        system = _d(_get(body, "systemInstruction"))
        last_parts = as_list(contents[-1].get("parts")) if contents else []
        schema = _get(config, "responseSchema") or _get(config, "responseJsonSchema")
        return Prompt(
            last_user=content_text(users[-1].get("parts")) if users else "",
            all_text=" ".join(
                [content_text(system.get("parts"))]
                + [content_text(c.get("parts")) for c in contents]
            ),
            max_tokens=positive_int(_get(config, "maxOutputTokens")),
            tools=[
                Tool(
                    str(f.get("name", "tool")),
                    _d(f.get("parameters") or _get(f, "parametersJsonSchema")),
                )
                for f in declarations
            ],
            tool_result_last=any(_get(_d(p), "functionResponse") is not None for p in last_parts),
            tools_disabled=calling.get("mode") == "NONE",
            forced_tool=str(allowed[0]) if allowed and allowed[0] else None,
            json_schema=_d(schema) or None,
            json_mode=_get(config, "responseMimeType") == "application/json",
        )

    def tool_call_id(self, rng: random.Random) -> str:
        return f"call_{rng.getrandbits(96):024x}"  # google-genai does not read an id here

    def _chunk(
        self, completion: Completion, parts: list[Any], response_id: str, final: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"index": 0}
        _set_parts(candidate, parts)
        body: dict[str, Any] = {"candidates": [candidate]}
        if final:
            candidate["finishReason"] = self.finish_reasons.of(completion.finish)
            body["usageMetadata"] = _usage_json(completion.usage)
        body["modelVersion"] = completion.model
        body["responseId"] = response_id
        return body

    def render(self, req: RequestInfo, completion: Completion) -> Any:
        parts: list[Any] = []
        if completion.text:
            parts.append({"text": completion.text})
        parts += _call_parts(completion.tool_calls)
        return self._chunk(completion, parts, new_id("", 11), final=True)

    def render_stream(self, req: RequestInfo, completion: Completion) -> Iterator[SSEEvent]:
        response_id = new_id("", 11)
        for piece in chunks_of(completion):
            yield SSEEvent.of(self._chunk(completion, [{"text": piece}], response_id, False))
        if completion.tool_calls:
            parts = _call_parts(completion.tool_calls)
            yield SSEEvent.of(self._chunk(completion, parts, response_id, False))
        yield SSEEvent.of(self._chunk(completion, [{"text": ""}], response_id, True))

    def stream_framing(
        self, req: RequestInfo, events: Iterable[SSEEvent | Pause]
    ) -> tuple[str, Iterator[Part]]:
        if "alt=sse" in req.query:
            return super().stream_framing(req, events)
        # Without alt=sse Gemini streams one JSON array, element by element.
        return "application/json", _json_array(events)

    # --- reading --------------------------------------------------------------
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
        others = [p for p in _parts_of(candidate) if "text" not in as_dict(p)]
        _set_parts(candidate, [{"text": text}, *others] if text else others)
        return new

    def with_finish(self, body: Any, finish: Finish, reason: str | None = None) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        if candidate:
            _finish_candidate(candidate, reason or self.finish_reasons.of(finish))
        return new

    def with_output_tokens(self, body: Any, tokens: int) -> Any:
        new = clone(body)
        meta = as_dict(as_dict(new).get("usageMetadata"))
        if meta:
            prompt = as_int(meta.get("promptTokenCount"))
            meta.clear()
            meta.update(_usage_json(Usage(prompt, tokens)))
        candidate = self._candidate(new)
        if not tokens and candidate:
            # Nothing generated: Gemini's content then has no parts at all.
            _set_parts(candidate, [p for p in _parts_of(candidate) if as_dict(p).get("text")])
        return new

    def with_malformed_tool_call(self, body: Any) -> Any:
        new = clone(body)
        candidate = self._candidate(new)
        names = [c.name for c in self.tool_calls_of(body)]
        if candidate and names:
            _set_parts(candidate, [])
            candidate["finishReason"] = "MALFORMED_FUNCTION_CALL"
            candidate["finishMessage"] = MALFORMED_CALL_MESSAGE.format(name=names[0])
            new = self.with_output_tokens(new, 0)
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
        kept = [p for p in _parts_of(candidate) if "functionCall" not in as_dict(p)]
        _set_parts(candidate, kept + _call_parts(calls))
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

    def event_with_finish(
        self, event: SSEEvent, finish: Finish, reason: str | None = None
    ) -> SSEEvent:
        if not self._candidate(event.json):
            return event
        return event.replaced(self.with_finish(event.json, finish, reason))

    def event_with_output_tokens(self, event: SSEEvent, tokens: int) -> SSEEvent:
        if "usageMetadata" not in as_dict(event.json):
            return event
        return event.replaced(self.with_output_tokens(event.json, tokens))

    def event_with_malformed_tool_call(self, event: SSEEvent) -> SSEEvent | None:
        payload = as_dict(event.json)
        candidate = self._candidate(payload)
        if candidate.get("finishReason"):
            new = clone(payload)
            final = self._candidate(new)
            _set_parts(final, [p for p in _parts_of(final) if as_dict(p).get("text")])
            final["finishReason"] = "MALFORMED_FUNCTION_CALL"
            final["finishMessage"] = MALFORMED_CALL_MESSAGE.format(name="the call did not parse")
            return event.replaced(new)
        if any("functionCall" in as_dict(p) for p in _parts_of(candidate)):
            new = clone(payload)
            kept = [p for p in _parts_of(self._candidate(new)) if "functionCall" not in as_dict(p)]
            if not kept:
                return None
            _set_parts(self._candidate(new), kept)
            return event.replaced(new)
        return event

    def _call_edit(self, event: SSEEvent, key: str, value: Any) -> SSEEvent:
        payload = clone(event.json)
        candidate = self._candidate(payload)
        for index, part in enumerate(_parts_of(candidate)):
            call = as_dict(part).get("functionCall")
            if isinstance(call, dict):
                if key == "args" and not isinstance(value, dict):
                    # Unparseable arguments never reach the wire: the call goes away.
                    parts = _parts_of(candidate)
                    _set_parts(candidate, parts[:index] + parts[index + 1 :])
                else:
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
        # Gemini sends arguments whole, as an object.
        return self._call_edit(event, "args", parse_arguments(arguments or "{}"))

    def keepalive_event(self) -> SSEEvent | None:
        return None  # Google sends no keep-alive; google-genai parses every line as JSON


def _json_array(items: Iterable[SSEEvent | Pause]) -> Iterator[Part]:
    sep = b"["
    for item in items:
        if isinstance(item, Pause):
            yield item
            continue
        yield sep + item.data.encode() + b"\n"
        sep = b",\r\n"
    yield b"[]" if sep == b"[" else b"]"


def proto_duration(seconds: float) -> str:
    """A google.protobuf.Duration in its JSON form: 0, 3, 6 or 9 fractional digits (`26s`,
    `0.300s`), as the protobuf JSON mapping writes it."""
    nanos = round(max(seconds, 0.0) * 1e9)
    whole, frac = divmod(nanos, 1_000_000_000)
    if not frac:
        return f"{whole}s"
    for digits in (3, 6, 9):
        scale = 10 ** (9 - digits)
        if frac % scale == 0:
            return f"{whole}.{frac // scale:0{digits}d}s"
    return f"{whole}.{frac:09d}s"


def _status_body(
    code: int, message: str, status: str | None, details: list[Any] | None
) -> dict[str, Any]:
    """A `google.rpc.Status` error body; `status` defaults to the HTTP code's name."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


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
        body = _status_body(code, message, None, details)
        return json_reply(code, body, self.response_headers(req))

    def error_body(self, fields: ErrorAnswer, headers: list[tuple[str, str]]) -> dict[str, Any]:
        status = fields.status
        default = _MESSAGES.get(
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
        return _status_body(status, fields.message or default, fields.type, details)

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
                "safetyRatings": [dict(r) for r in _BLOCKED_RATINGS],
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
        code = _CODES.get(type, 500)
        status = type if type in _CODES else "INTERNAL"
        return SSEEvent.of({"error": {"code": code, "message": message, "status": status}})
