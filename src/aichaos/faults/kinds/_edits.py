"""What the content fault kinds share: whether an answer has a completion to edit, and body
edits made on the parsed JSON answer through the provider's dialect."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aichaos.faults.plan import EditContext, Plan
from aichaos.providers.base import Dialect

Headers = list[tuple[str, str]]


def has_content(plan: Plan) -> bool:
    return plan.dialect is not None and plan.dialect.has_completion


def json_edit(
    edit: Callable[[Dialect, Any], Any],
) -> Callable[[EditContext, int, Headers, bytes], tuple[int, Headers, bytes]]:
    """A body edit that parses the JSON answer, edits it through the dialect, re-encodes it."""

    def apply(
        ctx: EditContext, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if ctx.dialect is None:
            return status, headers, body
        try:
            payload = json.loads(body)
        except ValueError:
            return status, headers, body
        edited = edit(ctx.dialect, payload)
        return status, headers, json.dumps(edited, separators=(",", ":")).encode()

    return apply
