"""Every fault kind against the real openai SDK (3.x), through `aichaos.inject()`.

Each test asserts what the SDK really does with the real failure (per the provider
reference): the exception class, status, `.type`/`.code`, `.body` (the *inner* error object),
how many attempts the SDK makes with its default `max_retries=2`, and how long it waits
between them. The SDK runs on its default client (httpx2) and on a plain `httpx.Client`
passed as `http_client`: both must see exactly the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

import aichaos
from sdk_support import (
    API_KEY,
    GPT,
    MESSAGES,
    WEATHER,
    SdkSleeps,
    words,
)

FLAVORS = ("httpx2", "httpx")


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def openai_client(flavor: str) -> Iterator[openai.OpenAI]:
    """The SDK's default client (httpx2), or one on a plain `httpx.Client`."""
    http_client = httpx.Client() if flavor == "httpx" else None
    # openai 3.x takes a plain httpx client too, though its annotations say httpx2.
    with openai.OpenAI(api_key=API_KEY, http_client=http_client) as sdk:  # type: ignore[arg-type]
        yield sdk


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SdkSleeps:
    """The retry delays the SDK computes, by call id (it still sleeps them)."""
    return SdkSleeps().install(monkeypatch)


@pytest.fixture
def client(flavor: str) -> Iterator[openai.OpenAI]:
    with openai_client(flavor) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def baseline() -> str:
    """The mock's answer to the prompt when no fault acts (deterministic for the seed)."""
    with aichaos.inject(), openai.OpenAI(api_key=API_KEY) as sdk:
        text = create(sdk).choices[0].message.content
    assert isinstance(text, str) and len(words(text)) >= 8
    return text


def create(client: openai.OpenAI, **kw: Any) -> Any:
    return client.chat.completions.create(model=GPT, messages=MESSAGES, **kw)  # type: ignore[arg-type]


def chunks_of(client: openai.OpenAI, **kw: Any) -> list[ChatCompletionChunk]:
    return list(create(client, stream=True, **kw))


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def content_chunks(chunks: list[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    return [c for c in chunks if c.choices and c.choices[0].delta.content]


def finish_reasons(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


# --- retries: the rest, errors and retries of both SDKs as one table, is test_sdk_retries.py


# --- failures inside a started stream, as one table of both SDKs: test_sdk_streams.py ----------


# --- delays ----------------------------------------------------------------------------


# --- malformed 200s, as one table of both SDKs: test_sdk_malformed.py ------------------------


# --- Azure OpenAI ------------------------------------------------------------------------------

AZURE_ENDPOINT = "https://example-resource.openai.azure.com"


@pytest.fixture
def azure(flavor: str) -> Iterator[openai.AzureOpenAI]:
    http_client = httpx.Client() if flavor == "httpx" else None
    with openai.AzureOpenAI(
        api_key=API_KEY,
        api_version="2024-10-21",
        azure_endpoint=AZURE_ENDPOINT,
        http_client=http_client,  # type: ignore[arg-type]
    ) as sdk:
        yield sdk


def test_azure_prompt_content_filter(azure: openai.AzureOpenAI) -> None:
    fault = {"kind": "content_filter", "on": "prompt"}
    with (
        aichaos.inject([fault], backends={"azure": "azure"}) as chaos,
        pytest.raises(openai.BadRequestError) as info,
    ):
        create(azure)
    exc = info.value
    assert exc.status_code == 400
    assert exc.code == "content_filter" and exc.type is None and exc.param == "prompt"
    assert isinstance(exc.body, dict)
    assert exc.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert exc.body["innererror"]["content_filter_result"]["violence"]["filtered"] is True
    assert len(chaos.attempts) == 1
    assert chaos.attempts[0].path == "/openai/deployments/gpt-4o/chat/completions"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_azure_completion_content_filter(azure: openai.AzureOpenAI, stream: bool) -> None:
    with aichaos.inject([{"kind": "content_filter"}], backends={"azure": "azure"}):
        if stream:
            chunks = chunks_of(azure)
            assert chunks[0].choices == []  # Azure's prompt-annotation chunk
            assert finish_reasons(chunks) == ["content_filter"]
            assert text_of(chunks) == ""
        else:
            choice = create(azure).choices[0]
            assert choice.finish_reason == "content_filter"
            filtered = choice.model_extra["content_filter_results"]
            assert filtered["violence"]["filtered"] is True


# --- the Responses API -------------------------------------------------------------------------


def test_responses_stream_error_event_is_yielded(client: openai.OpenAI) -> None:
    fault = {"kind": "stream_cut", "mode": "error_event", "after": 2}
    with aichaos.inject([fault]) as chaos:
        events = list(client.responses.create(model="gpt-4.1", input="hi", stream=True))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 2
    assert events[-1].type == "error"  # the flat error event is yielded, not raised
    assert events[-1].code == "server_error"
    assert not [e for e in events if e.type == "response.completed"]
    assert len(chaos.attempts) == 1


def responses_text(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_responses_truncated(client: openai.OpenAI, stream: bool) -> None:
    with aichaos.inject([{"kind": "truncated", "after": 2}]):
        if stream:
            events = list(client.responses.create(model="gpt-4.1", input="hi", stream=True))
            assert events[-1].type == "response.incomplete"
            response = events[-1].response
            text = responses_text(events)
            done = [e.text for e in events if e.type == "response.output_text.done"]
            assert done == [text]  # the repeated text agrees with the deltas
            assert response.output_text == text
        else:
            response = client.responses.create(model="gpt-4.1", input="hi")
            text = response.output_text
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert len(words(text)) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"kind": "empty_completion"}, ""),
        ({"kind": "corrupt_text", "mode": "replace", "text": "Pwned."}, "Pwned."),
    ],
    ids=["empty_completion", "corrupt_text"],
)
def test_responses_stream_helper_sees_the_edited_text(
    client: openai.OpenAI, fault: dict[str, Any], expected: str
) -> None:
    """`responses.stream()` takes the final text from `response.completed`, not the deltas."""
    with (
        aichaos.inject([fault]),
        client.responses.stream(model="gpt-4.1", input="hi") as stream,
    ):
        deltas = responses_text(list(stream))
        final = stream.get_final_response()
    assert deltas == expected
    assert final.output_text == expected


@pytest.mark.parametrize("variant", ["invalid_json", "unknown_tool", "missing_arguments"])
def test_responses_stream_bad_tool_call(client: openai.OpenAI, variant: str) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]

    def call() -> tuple[str, Any]:
        with client.responses.stream(model="gpt-4.1", input="hi", tools=tools) as stream:
            events = list(stream)
            return "".join(
                e.delta for e in events if e.type == "response.function_call_arguments.delta"
            ), stream.get_final_response().output[0]

    with aichaos.inject():
        good, _ = call()
    with aichaos.inject([{"kind": "bad_tool_call", "variant": variant}]):
        deltas, item = call()
    assert item.type == "function_call"
    assert item.arguments == deltas  # the final response repeats what the deltas said
    if variant == "invalid_json":
        assert deltas == "{" + good  # every fragment kept, one stray brace up front
        with pytest.raises(json.JSONDecodeError):
            json.loads(item.arguments)
    elif variant == "unknown_tool":
        assert (item.name, deltas) == ("no_such_tool", good)
    else:
        assert (item.name, deltas) == ("get_weather", "{}")
