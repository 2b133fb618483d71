"""What real clients do under each fault kind, as proven by the test suite.

One row per (kind, provider, client): what the client raised or returned, how many attempts it
made and how it waited. Each row names the test that proves it: `path::test_name`, or a glob of
test files that exercise the kind (the openai and anthropic fault suites). docs/faults.md is
generated from this table, so a claim exists only for the clients that were tested; other
clients (the Node SDKs, say, which do not time out a stalled stream once the headers arrived)
may behave differently.
"""

from __future__ import annotations

from dataclasses import dataclass

OPENAI = "openai 3.57"
ANTHROPIC = "anthropic 2.14"
GENAI = "google-genai 3.6"
LITELLM = "litellm 1.110"

# the tables run against both SDKs, one file per concern (error answers, retries, rate limits,
# latency, faults inside a started stream, content faults, bad tool calls, malformed 200s)
_TABLES = (
    "tests/test_sdk_errors.py tests/test_sdk_retries.py tests/test_sdk_rate_limits.py"
    " tests/test_sdk_latency.py tests/test_sdk_streams.py tests/test_sdk_content.py"
    " tests/test_sdk_tool_calls.py tests/test_sdk_malformed.py"
)
_OPENAI_SUITE = f"{_TABLES} tests/test_sdk_responses.py"
_ANTHROPIC_SUITE = _TABLES
_GEMINI = "tests/test_sdk_gemini.py"
_LITELLM = "tests/test_sdk_litellm.py"


@dataclass(frozen=True)
class Observed:
    """A client's tested behaviour under a fault, for one provider."""

    provider: str
    client: str
    does: str
    test: str  # `path::test_name`, or globs (space-separated) of test files that use the kind


def _suites(openai: str, anthropic: str) -> tuple[Observed, ...]:
    return (
        Observed("openai", OPENAI, openai, _OPENAI_SUITE),
        Observed("anthropic", ANTHROPIC, anthropic, _ANTHROPIC_SUITE),
    )


OBSERVED: dict[str, tuple[Observed, ...]] = {
    "error": (
        *_suites(
            "class by status (5xx `InternalServerError`); 408, 409, 429, 5xx: 3 attempts with"
            " backoff or `retry-after`; above 120 s: 1 attempt",
            "class by status (503/504/529 subclasses); 408, 409, 429, 5xx: 3 attempts, sleeps"
            " any `retry-after`",
        ),
        Observed(
            "openai",
            OPENAI,
            "`body: html`/`nginx`: `InternalServerError`, the page as `.body`, `.code` None,"
            " 3 attempts with backoff",
            "tests/test_sdk_errors.py::test_gateway_html_page_is_an_internal_server_error",
        ),
        Observed(
            "anthropic",
            ANTHROPIC,
            "`body: html`/`nginx`: `InternalServerError`, the page as `.body`, `.type` None,"
            " 3 attempts with backoff",
            "tests/test_sdk_errors.py::test_gateway_html_page_is_an_internal_server_error",
        ),
        Observed(
            "anthropic",
            ANTHROPIC,
            "`retry_after`: only `retry-after`, whole seconds rounded up (0.2 s: `1`); the SDK"
            " sleeps it (1 s) between 3 attempts",
            "tests/test_sdk_retries.py::test_status_error_is_retried",  # its row `error-500`
        ),
        Observed(
            "openai",
            OPENAI,
            "integer `code` kept in `.body`; `x-should-retry: false` given in `headers`: 1 attempt",
            "tests/test_sdk_errors.py::test_replaced_headers_and_an_integer_code",
        ),
    ),
    "outage": (
        *_suites(
            "`InternalServerError`, 3 attempts with backoff (0.375-0.5 s, then 0.75-1 s)",
            "529 `OverloadedError`, 3 attempts with backoff",
        ),
        Observed(
            "gemini",
            GENAI,
            "`errors.ServerError` 503 `UNAVAILABLE`, 1 attempt (no retry unless configured)",
            f"{_GEMINI}::test_outage_is_a_server_error_without_retries",
        ),
    ),
    "rate_limit": (
        *_suites(
            "`RateLimitError`; sleeps `retry-after` between 3 attempts; above 120 s: 1 attempt;"
            " Azure's 429 likewise",
            "`RateLimitError`; sleeps any `retry-after` (whole seconds, rounded up) between 3"
            " attempts",
        ),
        Observed(
            "gemini",
            GENAI,
            "`errors.ClientError` 429 `RESOURCE_EXHAUSTED`, `RetryInfo` `0.300s` in `.details`,"
            " 1 attempt",
            f"{_GEMINI}::test_rate_limit_retry_delay_keeps_its_precision",
        ),
    ),
    "quota_exhausted": _suites(
        "`RateLimitError` `insufficient_quota`, retried like any 429 (3 attempts); Azure's"
        " 86400 s 429: 1 attempt",
        "`EnforcedSpendLimitReachedError` (a `RateLimitError`), 3 attempts; credit balance:"
        " `BadRequestError`, 1 attempt",
    ),
    "rate_limiter": _suites(
        "`RateLimitError` once over the limit, retried after the window's `retry-after`",
        "`RateLimitError` once over the limit, retried after the window's `retry-after`"
        " (whole seconds, rounded up: 0.4 s left, a 1 s sleep)",
    ),
    "latency": _suites("the call takes the delay longer", "the call takes the delay longer"),
    "timeout": _suites(
        "`APITimeoutError` after 3 attempts, each waiting the read timeout",
        "`APITimeoutError` after 3 attempts, each waiting the read timeout",
    ),
    "connection_reset": _suites(
        "before the answer: `APIConnectionError` after 3 attempts; mid-stream:"
        " `APIConnectionError` while iterating, 1 attempt",
        "before the answer: `APIConnectionError` after 3 attempts; mid-stream: raw"
        " `httpx2.RemoteProtocolError`, 1 attempt",
    ),
    "connection_refused": _suites(
        "`APIConnectionError` after 3 attempts", "`APIConnectionError` after 3 attempts"
    ),
    "slow_stream": _suites(
        "the answer arrives whole, later; a wait past the read timeout: `APITimeoutError`",
        "the answer arrives whole, later; a wait past the read timeout: a read timeout",
    ),
    "stream_cut": (
        *_suites(
            "`drop`: `APIConnectionError`; `error_event`: `APIError` without status;"
            " `no_terminator`: no error, short answer; never retried",
            "`drop`: raw `httpx2.RemoteProtocolError`; `error_event`: `APIStatusError` with"
            " status 200; `no_terminator`: no error; never retried",
        ),
        Observed(
            "openai",
            OPENAI,
            "Responses `failed`: `response.failed` yielded, sequence numbers contiguous,"
            " `get_final_response()` raises `RuntimeError`",
            "tests/test_sdk_responses.py::test_responses_stream_fails_with_response_failed",
        ),
        Observed(
            "openai",
            OPENAI,
            "Responses `error_event`: the flat `error` event yielded with the next sequence number",
            "tests/test_sdk_responses.py::test_responses_stream_error_event_is_yielded",
        ),
    ),
    "stream_stall": (
        *_suites(
            "past the read timeout: `APITimeoutError`, 1 attempt; with `keepalive`: completes",
            "past the read timeout: a read timeout, 1 attempt; with `keepalive` (pings): completes",
        ),
        Observed(
            "gemini",
            GENAI,
            "with `keepalive`: no line is sent while stalled, the answer completes",
            f"{_GEMINI}::test_stall_with_keepalive_sends_no_comment_lines",
        ),
        Observed(
            "gemini",
            LITELLM,
            "with `keepalive`: the whole answer arrives (a comment line would end it early)",
            f"{_LITELLM}::test_gemini_stall_with_keepalive_keeps_the_whole_answer",
        ),
    ),
    "malformed": _suites(
        "`invalid_json`: raw `json.JSONDecodeError`; `html_error_page`: returns a `str`;"
        " `wrong_schema`: fields None; not retried",
        "`invalid_json`: raw `json.JSONDecodeError`; `html_error_page`: returns a `str`;"
        " not retried",
    ),
    "content_filter": (
        *_suites(
            "no exception, `finish_reason: content_filter`; Azure `on: prompt`:"
            " `BadRequestError` `content_filter`, 1 attempt",
            "no exception, `stop_reason: refusal`",
        ),
        Observed(
            "azure",
            OPENAI,
            "`reason: ContentFiltered`: `BadRequestError`, `innererror.code` ContentFiltered",
            f"{_LITELLM}::test_azure_content_filtered_variant_with_the_openai_sdk",
        ),
        Observed(
            "azure",
            LITELLM,
            "`on: prompt`: `ContentPolicyViolationError` (Router falls back);"
            " `reason: ContentFiltered`: plain `BadRequestError`, no fallback",
            f"{_LITELLM}::test_router_falls_back_only_for_the_shape_litellm_recognises",
        ),
        Observed(
            "gemini",
            GENAI,
            "finish reasons SAFETY, RECITATION (citations), PROHIBITED_CONTENT, BLOCKLIST, SPII,"
            " OTHER; `text` None; no exception",
            f"{_GEMINI}::test_filter_finish_reasons",
        ),
        Observed(
            "gemini",
            GENAI,
            "`on: prompt`: `candidates` None, `prompt_feedback.block_reason` set, status 200",
            f"{_GEMINI}::test_blocked_prompt",
        ),
    ),
    "truncated": (
        *_suites(
            "no exception, `finish_reason: length`", "no exception, `stop_reason: max_tokens`"
        ),
        Observed(
            "openai",
            OPENAI,
            "streamed tool arguments no longer parse; usage counts the delivered tokens",
            "tests/test_sdk_tool_calls.py::test_truncated_stream_cuts_tool_arguments",
        ),
        Observed(
            "gemini",
            GENAI,
            "`MAX_TOKENS`, `candidates_token_count` the delivered tokens",
            f"{_GEMINI}::test_truncated_usage_counts_what_was_delivered",
        ),
    ),
    "empty_completion": (
        *_suites("no exception, empty text", "no exception, empty text"),
        Observed(
            "gemini",
            GENAI,
            '`text` None (not `""`), no output token count',
            f"{_GEMINI}::test_empty_answer_has_no_text_at_all",
        ),
    ),
    "bad_tool_call": (
        *_suites(
            "arguments handed over as sent: `json.loads` fails in the app",
            "streams: the `messages.stream()` helper raises `ValueError` on the partial JSON",
        ),
        Observed(
            "openai",
            OPENAI,
            '`invalid_json` on `{}` gives `{{}`; `empty_arguments` gives `""`; stream and body'
            " alike",
            "tests/test_sdk_tool_calls.py::test_broken_tool_arguments",
        ),
        Observed(
            "anthropic",
            ANTHROPIC,
            "`invalid_json` not streamed: `input` an object of stringified values (each the JSON"
            " text of the meant value)",
            "tests/test_sdk_tool_calls.py::test_bad_tool_call",
        ),
        Observed(
            "anthropic",
            ANTHROPIC,
            "`empty_arguments`: `input` is `{}`, stream and body alike",
            "tests/test_sdk_tool_calls.py::test_bad_tool_call",
        ),
        Observed(
            "gemini",
            GENAI,
            "`invalid_json`: `MALFORMED_FUNCTION_CALL`, `function_calls` None",
            f"{_GEMINI}::test_invalid_tool_arguments_are_a_malformed_function_call",
        ),
    ),
    "context_length": _suites(
        "`BadRequestError` `context_length_exceeded`, 1 attempt",
        '`BadRequestError` "prompt is too long", 1 attempt',
    ),
    "auth_error": _suites("`AuthenticationError`, 1 attempt", "`AuthenticationError`, 1 attempt"),
    "model_not_found": _suites("`NotFoundError`, 1 attempt", "`NotFoundError`, 1 attempt"),
    "raw": (
        Observed(
            "openai",
            OPENAI,
            "events as given with their delays, then `end: reset`: `APIConnectionError` while"
            " iterating, 1 attempt (in-process and through the proxy)",
            "tests/test_fault_raw.py::test_events_with_delays_then_a_reset_in_process",
        ),
        Observed(
            "openai",
            OPENAI,
            "a 524 HTML page with exactly its headers: `InternalServerError`, 3 attempts",
            "tests/test_fault_raw.py::test_headers_are_exactly_as_given_in_process",
        ),
    ),
    "corrupt_text": (
        *_suites("no exception, the text changed", "no exception, the text changed"),
        Observed(
            "openai",
            OPENAI,
            "`numbers`, `dates`, `names`: same shape of text, other facts, one replacement per"
            " value",
            "tests/test_sdk_content.py::test_corrupt_text_changes_facts_plausibly",
        ),
    ),
}
