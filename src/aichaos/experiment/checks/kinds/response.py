"""The `response` check: what successful calls answered (JSON schema, text, regex, non-empty)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from aichaos.experiment.checks.base import Check, CheckContext, Measurement, no_calls, share
from aichaos.experiment.results import CallRecord
from aichaos.units import Regex


class Response(Check):
    """At least `min_share` of successful calls answered what they should."""

    summary: ClassVar[str] = "answers of successful calls (json_schema, contains, regex, not_empty)"
    check: Literal["response"] = "response"
    json_schema: dict[str, Any] | None = Field(None, description="The answer is JSON valid here.")
    contains: list[str] | None = Field(None, description="Text(s) the answer must contain.")
    not_contains: list[str] | None = Field(None, description="Text(s) it must never contain.")
    regex: Regex | None = Field(None, description="A regular expression the answer must match.")
    not_empty: bool = Field(False, description="The answer has non-whitespace text.")
    ignore_case: bool = Field(False, description="contains / not_contains / regex ignore case.")
    min_share: float = Field(1.0, ge=0.0, le=1.0, description="Share of answers that must pass.")

    _validator: Any = PrivateAttr(None)

    @field_validator(
        "contains", "not_contains", mode="before", json_schema_input_type=str | list[str] | None
    )
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return value

    @model_validator(mode="after")
    def _something_to_check(self) -> Response:
        given = (self.json_schema, self.contains, self.not_contains, self.regex)
        if all(v is None for v in given) and not self.not_empty:
            raise ValueError(
                "response needs json_schema, contains, not_contains, regex or not_empty: true"
            )
        return self

    def bound(self) -> str:
        parts = []
        if self.json_schema is not None:
            parts.append("matches schema")
        if self.contains:
            parts.append(f"contains {', '.join(map(repr, self.contains))}")
        if self.not_contains:
            parts.append(f"lacks {', '.join(map(repr, self.not_contains))}")
        if self.regex is not None:
            parts.append(f"matches /{self.regex}/")
        if self.not_empty:
            parts.append("not empty")
        share_text = "" if self.min_share >= 1 else f" in >= {self.min_share:g}"
        return " and ".join(parts) + share_text

    def problem(self, text: str) -> str | None:
        """Why one answer fails, or None when it passes."""
        if self.not_empty and not text.strip():
            return "empty answer"
        flags = re.IGNORECASE if self.ignore_case else 0
        folded = text.lower() if self.ignore_case else text
        for needle in self.contains or []:
            if (needle.lower() if self.ignore_case else needle) not in folded:
                return f"does not contain {needle!r}"
        for needle in self.not_contains or []:
            if (needle.lower() if self.ignore_case else needle) in folded:
                return f"contains {needle!r}"
        if self.regex is not None and not re.search(self.regex, text, flags):
            return f"does not match /{self.regex}/"
        if self.json_schema is not None:
            return self._schema_problem(text)
        return None

    def _schema_problem(self, text: str) -> str | None:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return f"not JSON ({exc.msg} at char {exc.pos})"
        if self._validator is None:
            import jsonschema

            assert self.json_schema is not None
            self._validator = jsonschema.validators.validator_for(self.json_schema)(
                self.json_schema
            )
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return f"schema: {where}: {error.message}"

    def measure(self, calls: Sequence[CallRecord], ctx: CheckContext) -> Measurement:
        answered = [c for c in calls if c.ok]
        if not answered:
            return no_calls("successful answers")
        failures = [(c, self.problem(c.output or "")) for c in answered]
        bad = [(c, why) for c, why in failures if why is not None]
        value = share(len(answered) - len(bad), len(answered))
        detail = f"{len(answered) - len(bad)} of {len(answered)} answers passed"
        if bad:
            call, why = bad[0]
            detail += f"; e.g. {call.id}: {why}"
        return Measurement(value, value >= self.min_share, detail)
