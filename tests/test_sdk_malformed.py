"""Malformed 200s (`malformed` faults) against the real openai and anthropic SDKs: one table.

Each row is a variant, whole (`create`) or streamed -> what the app gets: a raw
`json.JSONDecodeError` (not the SDK's error class, never retried), an object built without
validation that lost its shape, the error page's text, no event at all (and no error), or the
answer read anyway whatever the content type says. The two SDKs do the same; where their
objects differ (`choices` against `content`), the check says so.

Every row runs against each client of each SDK, all of a client's rows side by side.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

import aichaos
from sdk_support import (
    CLAUDE,
    GPT,
    MESSAGES,
    SDKS,
    Outcome,
    Outcomes,
    Sdk,
    applies,
    create,
    outcomes_fixture,
    rows_for,
    run_side_by_side,
    sdk_client,
)
from sdk_waits import SdkSleeps


@dataclass(frozen=True)
class Malformed:
    variant: str
    stream: bool
    gets: str  # "json_error" | "shapeless" | "page" | "nothing" | "read_anyway"
    providers: tuple[str, ...] = ("openai", "anthropic")

    @property
    def name(self) -> str:
        return f"{self.variant}-{'stream' if self.stream else 'create'}"


ROWS = [
    Malformed("invalid_json", False, "json_error"),
    Malformed("truncated_json", False, "json_error"),
    Malformed("empty_body", False, "json_error"),
    Malformed("wrong_schema", False, "shapeless"),
    Malformed("html_error_page", False, "page"),
    Malformed("wrong_content_type", False, "read_anyway"),  # the body is valid JSON
    Malformed("invalid_json", True, "json_error"),  # the first event is the broken one
    Malformed("truncated_json", True, "json_error"),
    Malformed("empty_body", True, "nothing"),  # no SSE event at all
    Malformed("html_error_page", True, "nothing"),  # no `data:` or `event:` line
    Malformed("wrong_schema", True, "shapeless"),  # the first event lost its shape
    Malformed("wrong_content_type", True, "read_anyway"),  # SSE is read whatever it says
]


@dataclass
class Got:
    result: Any = None
    error: Exception | None = None
    events: list[Any] = field(default_factory=list)
    content_type: str | None = None
    helper: Exception | None = None  # anthropic's stream helper on an empty body


def text_of(sdk: Sdk, events: list[Any]) -> str:
    if sdk.provider == "anthropic":
        return "".join(
            e.delta.text
            for e in events
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
    return "".join(c.choices[0].delta.content or "" for c in events if c.choices)


def answer_text(sdk: Sdk, answer: Any) -> str:
    if sdk.provider == "anthropic":
        assert isinstance(answer, anthropic.types.Message)
        return "".join(b.text for b in answer.content if b.type == "text")
    assert isinstance(answer, openai.types.chat.ChatCompletion)
    return str(answer.choices[0].message.content)


def get(sdk: Sdk, client: Any, headers: dict[str, str], *, row: Malformed) -> Got:
    got = Got()
    if row.gets == "read_anyway":
        if sdk.provider == "anthropic":
            raw = client.messages.with_raw_response.create(
                model=CLAUDE, max_tokens=1024, messages=MESSAGES, stream=row.stream,
                extra_headers=headers,
            )  # fmt: skip
        else:
            raw = client.chat.completions.with_raw_response.create(
                model=GPT, messages=MESSAGES, stream=row.stream, extra_headers=headers
            )
        got.content_type = raw.headers["content-type"]
        got.result = raw.parse()
        if row.stream:
            got.events = list(got.result)
        return got
    try:
        got.result = create(sdk, client, stream=row.stream, extra_headers=headers)
        if row.stream:
            for event in got.result:
                got.events.append(event)
    except Exception as exc:
        got.error = exc
    if sdk.provider == "anthropic" and row.stream and row.variant == "empty_body":
        try:
            with client.messages.stream(
                model=CLAUDE, max_tokens=1024, messages=MESSAGES, extra_headers=headers
            ) as stream:
                for _ in stream:
                    pass
                stream.get_final_message()
        except AssertionError as exc:  # the helper has no message to give
            got.helper = exc
    return got


def run_rows(sdk: Sdk) -> dict[str, Outcome]:
    return run_side_by_side(
        sdk,
        {
            row.name: ([{"kind": "malformed", "variant": row.variant}],
                       functools.partial(get, sdk, row=row))
            for row in ROWS
            if applies(row, sdk)
        },
    )  # fmt: skip


outcomes = outcomes_fixture(run_rows)


@pytest.mark.parametrize(("sdk", "row"), rows_for(ROWS))
def test_malformed(outcomes: Outcomes, baselines: dict[str, str], sdk: Sdk, row: Malformed) -> None:
    outcome = outcomes(sdk)[row.name]
    assert outcome.error is None
    got: Got = outcome.result
    helper = sdk.provider == "anthropic" and row.stream and row.variant == "empty_body"
    assert [a.status for a in outcome.attempts] == [200] * (1 + helper)  # never retried
    baseline = baselines[sdk.provider]
    if row.gets == "json_error":
        assert type(got.error) is json.JSONDecodeError  # raw, not the SDK's error class
        assert got.events == []
        return
    assert got.error is None
    if row.gets == "nothing":
        assert got.events == []  # zero events, and no error
        if helper:
            assert type(got.helper) is AssertionError
    elif row.gets == "page":
        assert isinstance(got.result, str)  # a non-JSON 200 comes back as its text
        assert got.result.startswith("<html>") and "502 Bad Gateway" in got.result
    elif row.gets == "read_anyway":
        assert got.content_type is not None and got.content_type.startswith("text/plain")
        text = text_of(sdk, got.events) if row.stream else answer_text(sdk, got.result)
        assert text == baseline
    elif row.stream:  # shapeless: the first event
        first = got.events[0]
        if sdk.provider == "anthropic":
            assert first.type is None  # message_start lost its shape
            assert getattr(first, "message", "missing") is None
            assert text_of(sdk, got.events) == baseline
        else:
            assert first.choices is None
            assert text_of(sdk, got.events[1:]) == baseline
    elif sdk.provider == "anthropic":  # shapeless, built without validation
        assert isinstance(got.result, anthropic.types.Message)
        assert got.result.content is None and got.result.stop_reason is None
    else:
        assert isinstance(got.result, openai.types.chat.ChatCompletion)
        assert got.result.choices is None and got.result.id is None


# --- faults that did not act are not hits ------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS, ids=lambda sdk: sdk.id)
def test_an_edit_of_an_error_answer_is_not_a_hit(sdk: Sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The body edit of `malformed` acts on a 2xx answer only: under an error it is not listed."""
    SdkSleeps(0.1).install(monkeypatch)  # the SDK's backoff, a tenth of it slept
    faults = [{"kind": "malformed"}, {"kind": "error", "status": 500}]
    with (
        sdk_client(sdk) as client,
        aichaos.inject(faults) as chaos,
        pytest.raises(sdk.module.InternalServerError) as info,
    ):
        create(sdk, client)
    assert isinstance(info.value.body, dict)  # the provider's JSON error, unchanged
    assert [a.faults for a in chaos.attempts] == [["error(500)"]] * 3
    with (
        sdk_client(sdk) as client,
        aichaos.inject([faults[0]]) as chaos,
        pytest.raises(json.JSONDecodeError),
    ):
        create(sdk, client)
    assert chaos.attempts[0].faults == ["malformed(invalid_json)"]
