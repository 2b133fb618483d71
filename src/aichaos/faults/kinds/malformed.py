"""A broken 200: a body that does not parse or is not what the SDK expects."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field

from aichaos.faults.base import Fault
from aichaos.faults.kinds._edits import Headers
from aichaos.faults.plan import EditContext, Plan, StreamEdit, StreamOut
from aichaos.wire.exchange import Reply
from aichaos.wire.sse import SSEEvent


def _set_content_type(value: str) -> Callable[[Headers], Headers]:
    def apply(headers: Headers) -> Headers:
        return [(k, v) for k, v in headers if k.lower() != "content-type"] + [
            ("content-type", value)
        ]

    return apply


_HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class Malformed(Fault):
    """A broken 200: the body does not parse or is not what the SDK expects.

    `invalid_json` and `truncated_json`: the SDKs raise a raw `json.JSONDecodeError`, not an SDK
    exception, and do not retry. `empty_body`: an empty 200 (a stream with no events).
    `wrong_schema`: valid JSON of another shape; the SDKs build the object without validation
    and its fields are `None`. `html_error_page`: a 200 `text/html` gateway page; the SDKs
    return it as a `str`. `wrong_content_type`: the real body as `text/plain`; the SDKs still
    parse it, so only code reading headers notices. On streams the first data event breaks.
    """

    summary: ClassVar[str] = (
        "a broken 200 (invalid_json, truncated_json, empty_body, wrong_schema,"
        " html_error_page, wrong_content_type)"
    )
    kind: Literal["malformed"] = "malformed"
    variant: Literal[
        "invalid_json",
        "truncated_json",
        "empty_body",
        "wrong_schema",
        "html_error_page",
        "wrong_content_type",
    ] = Field("invalid_json", description="How the answer is broken (see above).")

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        variant = self.variant
        if variant == "html_error_page":
            if plan.terminal:
                return False
            plan.reply = Reply(200, [("content-type", "text/html")], [_HTML_PAGE])
            return True
        if variant == "wrong_content_type":
            plan.header_edits.append(_set_content_type("text/plain; charset=utf-8"))
            return True
        if plan.req.stream:
            plan.stream_edit_factories.append(lambda ctx: _MalformedStreamEdit(variant))
        else:
            plan.body_edits.append(_malformed_body(variant))
        return True

    def label(self) -> str:
        return f"malformed({self.variant})"


def _malformed_body(
    variant: str,
) -> Callable[[EditContext, int, Headers, bytes], tuple[int, Headers, bytes]]:
    def apply(
        ctx: EditContext, status: int, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        if variant == "empty_body":
            return status, headers, b""
        if variant == "truncated_json":
            return status, headers, body[: max(1, len(body) // 2)]
        if variant == "wrong_schema":
            return status, headers, b'{"status":"ok","result":null}'
        return status, headers, body[: max(1, len(body) // 2)] + b"<!-- upstream -->}"

    return apply


class _MalformedStreamEdit(StreamEdit):
    """Breaks the first data event; `empty_body` drops every event."""

    def __init__(self, variant: str) -> None:
        self.variant, self.done = variant, False

    def on_event(self, event: SSEEvent) -> list[StreamOut]:
        if self.variant == "empty_body":
            return []
        if self.done or event.comment_only or not event.data:
            return [event]
        self.done = True
        if self.variant == "wrong_schema":
            return [SSEEvent.of({"status": "ok", "result": None}, event.event)]
        broken = event.data[: max(1, len(event.data) // 2)]
        if self.variant == "invalid_json":
            broken += "<!-- upstream -->}"
        return [SSEEvent(data=broken, event=event.event)]
