"""Faults that answer with the provider's own error instead of calling the upstream."""

from __future__ import annotations

import random
from typing import ClassVar, Literal

from pydantic import Field

from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.providers._common import retry_after_headers
from aichaos.units import Duration


class _ErrorFault(Fault):
    terminal: ClassVar[bool] = True


class ErrorFault(_ErrorFault):
    """Any status with the provider's own error body and headers."""

    summary: ClassVar[str] = "any status with the provider's own error body and headers"
    kind: Literal["error"] = "error"
    status: int = Field(500, ge=400, le=599, description="HTTP status to answer with.")
    type: str | None = Field(None, description="Error type (default: the provider's for status).")
    code: str | None = Field(None, description="Error code, where the provider has one.")
    message: str | None = Field(None, description="Error message (default: the provider's).")
    retry_after: Duration | None = Field(None, description="Send retry-after / retry-after-ms.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra response headers.")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        retry = [] if self.retry_after is None else retry_after_headers(self.retry_after)
        headers = [*retry, *self.headers.items()]
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


class Outage(_ErrorFault):
    """The provider's typical server-side failure."""

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
    """A 429 that clears after `retry_after`, with the provider's rate-limit headers."""

    summary: ClassVar[str] = "429 with retry-after/retry-after-ms and rate-limit headers"
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
    """A 429 (or the provider's equivalent) that waiting will not clear."""

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
    """The provider's context-length-exceeded error."""

    summary: ClassVar[str] = "the provider's context-length-exceeded error"
    kind: Literal["context_length"] = "context_length"
    limit: int = Field(128000, ge=1, description="The model's context window, in tokens.")
    tokens: int | None = Field(None, description="Tokens reported (default: limit + ~10%).")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        tokens = self.tokens if self.tokens is not None else self.limit + self.limit // 10 + 1
        plan.reply = plan.provider.context_length(plan.req, limit=self.limit, tokens=tokens)
        return True


class AuthError(_ErrorFault):
    """The provider's invalid-API-key answer."""

    summary: ClassVar[str] = "401 (Gemini: 400 API_KEY_INVALID) with the provider's body"
    kind: Literal["auth_error"] = "auth_error"

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.auth_error(plan.req)
        return True


class ModelNotFound(_ErrorFault):
    """The provider's unknown-model answer."""

    summary: ClassVar[str] = "404 with the provider's body naming the requested model"
    kind: Literal["model_not_found"] = "model_not_found"

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        plan.reply = plan.provider.model_not_found(plan.req)
        return True
