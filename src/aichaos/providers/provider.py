"""The provider interface: a provider groups its dialects with its error answers and headers.

Error answers are data (`Provider.answers`, rows of `ErrorAnswer` in replies.py); the error
body shape (`error_body`) and the 429's fields are each provider's own. Pure data, no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aichaos.providers.base import Dialect, Headers
from aichaos.providers.replies import ErrorAnswer, fill, json_reply, whole_seconds
from aichaos.wire.exchange import Reply, RequestInfo
from aichaos.wire.sse import SSEEvent


@dataclass(frozen=True)
class SdkEnvironment:
    """How the provider's official SDK is pointed elsewhere through its environment."""

    base_url: str  # the variable the SDK reads its base URL from
    base_path: str  # what the SDK expects after the host, e.g. OpenAI's `/v1`
    api_key: str  # the variable the SDK reads its API key from
    placeholder_key: str  # a key for offline runs: SDKs refuse to start without one


class Provider(ABC):
    """One provider's wire format: dialects, error bodies, headers."""

    name: str
    default_host: str
    # Every host the provider's clients reach with this wire format, `*` standing for part
    # of one DNS label (`*.openai.azure.com`); empty: just `default_host`.
    hosts: tuple[str, ...] = ()
    dialects: tuple[Dialect, ...] = ()
    sdk_env: SdkEnvironment | None = None
    name_hints: tuple[str, ...] = ()
    """Words in a backend's name that suggest this provider (`claude-fallback`)."""
    stream_error: tuple[str, str]
    """(type, message) of the in-band error event a stream carries when the fault names
    none (`stream_cut` `error_event`, `failed`): the provider's usual mid-stream error."""

    @property
    def claimed_hosts(self) -> tuple[str, ...]:
        """The hosts a backend of this provider claims in-process unless told otherwise."""
        return self.hosts or (self.default_host,)

    def dialect_for(self, method: str, path: str) -> Dialect | None:
        for dialect in self.dialects:
            if dialect.matches(method, path):
                return dialect
        return None

    # --- headers --------------------------------------------------------------
    @abstractmethod
    def response_headers(self, req: RequestInfo) -> list[tuple[str, str]]:
        """Headers the provider puts on every response (request id, version, ...)."""

    @abstractmethod
    def rate_limit_headers(
        self, *, scope: str, limit: int, remaining: int, reset_seconds: float
    ) -> list[tuple[str, str]]:
        """The provider's rate-limit headers for one scope (`requests` or `tokens`)."""

    def retry_after_headers(self, seconds: float) -> list[tuple[str, str]]:
        """How the provider tells a client to wait: `retry-after` in whole seconds, rounded up
        (RFC 9110 delay-seconds; Anthropic sends whole seconds). Azure adds `retry-after-ms`;
        OpenAI keeps the wait's precision (see each provider)."""
        return [("retry-after", whole_seconds(seconds))]

    # --- errors -------------------------------------------------------------
    answers: ClassVar[Mapping[str, ErrorAnswer]] = {}
    """The provider's canonical error answers by name (see `ANSWER_NAMES`): data, so a new
    error-like fault kind adds entries here instead of a method on every provider."""

    def error(
        self,
        req: RequestInfo,
        status: int,
        *,
        type: str | None = None,
        code: str | int | None = None,
        message: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        param: str | None = None,
    ) -> Reply:
        """An error response with the provider's own body shape (`error_body`) and headers;
        `headers` replace the provider's own of their names."""
        base = self.response_headers(req)
        body = self.error_body(ErrorAnswer(status, type, code, message, param), base)
        return json_reply(status, body, base, headers)

    @abstractmethod
    def error_body(self, fields: ErrorAnswer, headers: list[tuple[str, str]]) -> dict[str, Any]:
        """The JSON body of an error answer; `None` fields take the provider's defaults for
        `fields.status`. `headers` are the answer's own (a body may repeat its request id)."""

    def template_values(self, req: RequestInfo) -> dict[str, str]:
        """Values an answer's message may name: `{model}`, `{method}`, `{path}`, ..."""
        return {"model": req.model or "", "method": req.method, "path": req.path}

    def answer(self, req: RequestInfo, name: str, **values: object) -> Reply | None:
        """The canonical answer `name`, its message filled in; None if the provider has none."""
        spec = self.answers.get(name)
        if spec is None:
            return None
        filled = {**self.template_values(req), **{k: str(v) for k, v in values.items()}}
        message = fill(spec.message, filled) if spec.message is not None else None
        return self.error(
            req, spec.status, type=spec.type, code=spec.code, message=message, param=spec.param
        )

    def outage(self, req: RequestInfo, status: int | None = None) -> Reply:
        """The provider's typical server-side failure (its most common status by default)."""
        if status is not None:
            return self.error(req, status)
        return self.answer(req, "outage") or self.error(req, 500)

    def rate_limited(
        self, req: RequestInfo, *, scope: str, retry_after: float | None, limit: int
    ) -> Reply:
        """A 429 that clears after `retry_after` seconds (no `retry-after` when None: a wait
        of 1 s in the other headers), with the rate-limit headers of `scope` (`requests` or
        `tokens`) and the fields of `rate_limit_answer`."""
        wait = retry_after if retry_after is not None else 1.0
        headers = self.rate_limit_headers(scope=scope, limit=limit, remaining=0, reset_seconds=wait)
        if retry_after is not None:
            headers += self.retry_after_headers(retry_after)
        fields = self.rate_limit_answer(req, scope=scope, limit=limit, wait=wait)
        return self.error(
            req,
            429,
            type=fields.type,
            code=fields.code,
            message=fields.message,
            param=fields.param,
            headers=headers,
        )

    def rate_limit_answer(
        self, req: RequestInfo, *, scope: str, limit: int, wait: float
    ) -> ErrorAnswer:
        """The body fields of the provider's 429 for `scope`; the status's defaults here."""
        return ErrorAnswer(429)

    def quota_exhausted(self, req: RequestInfo, variant: str | None = None) -> Reply:
        """The error that waiting will not clear, exactly as the provider sends it.

        `variant` picks among several such errors where a provider has more than one.
        """
        named = self.answer(req, f"quota_exhausted.{variant}") if variant else None
        return named or self.answer(req, "quota_exhausted") or self.error(req, 429)

    def context_length(self, req: RequestInfo, *, limit: int, tokens: int) -> Reply:
        """The provider's context-length-exceeded error."""
        reply = self.answer(req, "context_length", limit=limit, tokens=tokens)
        return reply or self.error(req, 400)

    def auth_error(self, req: RequestInfo) -> Reply:
        """The provider's answer to a bad API key."""
        return self.answer(req, "auth_error") or self.error(req, 401)

    def model_not_found(self, req: RequestInfo) -> Reply:
        """The provider's answer naming an unknown model."""
        return self.answer(req, "model_not_found") or self.error(req, 404)

    def request_error(self, req: RequestInfo) -> Reply | None:
        """The 400 the provider answers a request it cannot take (body not JSON, a required
        field missing); None when the request is well formed."""
        dialect = self.dialect_for(req.method, req.path.split("?", 1)[0])
        if dialect is None or req.method != "POST":
            return None
        body = req.json
        if not isinstance(body, dict):
            return self.answer(req, "invalid_json") or self.error(req, 400)
        for field_name in dialect.required_fields:
            if field_name not in body:
                return self.answer(req, "missing_field", field=field_name) or self.error(req, 400)
        return None

    def content_filter_error(self, req: RequestInfo, reason: str | None = None) -> Reply | None:
        """What a provider answers when the *prompt* is filtered (an error, or Gemini's
        blocked-prompt 200); None if it has no such answer. `reason` picks a variant."""
        return None

    @abstractmethod
    def stream_error_event(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> SSEEvent:
        """An error delivered inside an already-started (200) stream; `headers` are the
        stream's own (Anthropic's event repeats their `request-id`)."""

    def stream_error_events(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> list[SSEEvent]:
        """The in-band error a stream sends when it fails after it started."""
        return [self.stream_error_event(req, type=type, message=message, headers=headers)]

    def stream_failure_events(
        self, req: RequestInfo, *, type: str, message: str, headers: Headers = ()
    ) -> list[SSEEvent]:
        """The terminal event of a failed answer where the provider has one (Responses'
        `response.failed`); else the in-band error."""
        return self.stream_error_events(req, type=type, message=message, headers=headers)
