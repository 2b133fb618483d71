"""Shared pieces of the tests that drive the real openai and anthropic SDKs through inject().

What the assertions expect comes from the reference on provider wire formats and SDK
behaviour (openai 3.57, anthropic 2.14): exception classes, statuses, error bodies, how many
attempts the SDK makes with its default `max_retries=2`, and how long it waits in between.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anthropic
import anthropic._base_client
import httpx
import openai
import openai._base_client
import pytest

import aichaos
import aichaos.faults.kinds.rate_limiter
from aichaos.records import Attempt
from sdk_waits import SdkSleeps

API_KEY = "sk-aichaos-planted-secret-5f0c2e9b7a"
PROMPT = "Describe the weather in Paris today"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
GPT = "gpt-4o"
CLAUDE = "claude-sonnet-4-6"

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city", "unit"],
}
OPENAI_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
]
ANTHROPIC_TOOLS: list[dict[str, Any]] = [
    {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER}
]


def read_until_error(stream: Any) -> tuple[list[Any], Exception]:
    """Iterate a stream until it raises; the items received before, and the exception."""
    received: list[Any] = []
    try:
        for item in stream:
            received.append(item)
    except Exception as exc:
        return received, exc
    raise AssertionError(f"the stream ended without an error after {len(received)} items")


def transport_module(flavor: str) -> ModuleType:
    """`httpx` or `httpx2`: the library whose exceptions a client of that flavour raises."""
    return importlib.import_module(flavor)


def words(text: str) -> list[str]:
    return text.split(" ")


def looks_scrambled(original: str, scrambled: str) -> bool:
    """Same words, letters shuffled inside them (first and last kept), and not all unchanged."""
    before, after = words(original), words(scrambled)
    if len(before) != len(after):
        return False
    for old, new in zip(before, after, strict=True):
        if sorted(old) != sorted(new) or old[:1] != new[:1] or old[-1:] != new[-1:]:
            return False
    return before != after


CASE_HEADER = "x-test-case"


def for_case(case: str, fault: dict[str, Any]) -> dict[str, Any]:
    """`fault`, acting only on requests that carry the case's header."""
    return {**fault, "match": {"headers": {CASE_HEADER: case}}}


@dataclass
class Outcome:
    """What one call returned or raised, and the attempts made on its behalf."""

    result: Any
    error: BaseException | None
    attempts: list[Attempt]
    sleeps: list[float] = field(default_factory=list)  # retry delays the SDK computed


def run_concurrently(
    calls: dict[str, Callable[[dict[str, str]], Any]], sleeps: SdkSleeps
) -> dict[str, Outcome]:
    """Run each call in its own thread and call scope, passing it the case's header.

    The SDKs' retry waits are sleeps: run side by side, a dozen retried calls take as long as
    the slowest one. Each call's attempts come from its own `aichaos.call_scope`, and its
    SDK's retry delays from `sleeps` (installed by the caller).
    """

    def one(case: str, call: Callable[[dict[str, str]], Any]) -> Outcome:
        with aichaos.call_scope(case) as scope:
            try:
                result = call({CASE_HEADER: case})
            except Exception as exc:
                return Outcome(None, exc, scope.attempts, sleeps.of(case))
            return Outcome(result, None, scope.attempts, sleeps.of(case))

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {case: pool.submit(one, case, call) for case, call in calls.items()}
    return {case: future.result() for case, future in futures.items()}


# --- the SDKs, as the tables see them (test_sdk_retries.py, test_sdk_streams.py, ...) ------


@dataclass(frozen=True)
class Sdk:
    """One SDK on one kind of HTTP client, sync or async."""

    provider: str  # "openai" | "anthropic"
    flavor: str  # "httpx2" | "httpx": the library whose exceptions its transport raises
    aio: bool = False  # its async client (`AsyncOpenAI`, `AsyncAnthropic`), on asyncio

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.flavor}{'-async' if self.aio else ''}"

    @property
    def module(self) -> ModuleType:
        return openai if self.provider == "openai" else anthropic


SDKS = (Sdk("openai", "httpx2"), Sdk("openai", "httpx"), Sdk("anthropic", "httpx2"))
ASYNC_SDKS = tuple(dataclasses.replace(sdk, aio=True) for sdk in SDKS)


@contextmanager
def sdk_client(sdk: Sdk) -> Iterator[Any]:
    assert not sdk.aio, "an async client is opened in its event loop: async_sdk_client"
    if sdk.provider == "anthropic":
        with anthropic.Anthropic(api_key=API_KEY) as client:
            yield client
        return
    http_client = httpx.Client() if sdk.flavor == "httpx" else None
    # openai 3.x takes a plain httpx client too, though its annotations say httpx2.
    with openai.OpenAI(api_key=API_KEY, http_client=http_client) as client:  # type: ignore[arg-type]
        yield client


@asynccontextmanager
async def async_sdk_client(sdk: Sdk) -> AsyncIterator[Any]:
    if sdk.provider == "anthropic":
        async with anthropic.AsyncAnthropic(api_key=API_KEY) as client:
            yield client
        return
    http_client = httpx.AsyncClient() if sdk.flavor == "httpx" else None
    async with openai.AsyncOpenAI(api_key=API_KEY, http_client=http_client) as client:  # type: ignore[arg-type]
        yield client


def create(sdk: Sdk, client: Any, **kw: Any) -> Any:
    """The SDK's create call (for an async client, the coroutine to await)."""
    if sdk.provider == "anthropic":
        return client.messages.create(model=CLAUDE, max_tokens=1024, messages=MESSAGES, **kw)
    return client.chat.completions.create(model=GPT, messages=MESSAGES, **kw)


def then(sdk: Sdk, answer: Any, stream: bool, parse: Callable[[Any], Any]) -> Any:
    """`parse(answer)`: the whole answer, or the stream of events. For an async client,
    `answer` is a coroutine and this returns one: it awaits the answer, gathers a stream's
    events into a list, and parses that."""
    if not sdk.aio:
        return parse(answer)

    async def awaited() -> Any:
        found = await answer
        if stream:
            found = [event async for event in found]
        return parse(found)

    return awaited()


def answer_text(sdk: Sdk, client: Any, stream: bool, headers: dict[str, str]) -> Any:
    """The answer's text, read whole or from the stream's text deltas (for an async client,
    the coroutine that gives it)."""
    answer = create(sdk, client, stream=stream, extra_headers=headers)
    return then(sdk, answer, stream, functools.partial(text_of_answer, sdk, stream))


def text_of_answer(sdk: Sdk, stream: bool, answer: Any) -> str:
    if sdk.provider == "anthropic":
        if not stream:
            return "".join(b.text for b in answer.content if b.type == "text")
        return "".join(
            e.delta.text
            for e in answer
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
    if not stream:
        return str(answer.choices[0].message.content)
    return "".join(c.choices[0].delta.content or "" for c in answer if c.choices)


def assert_inner_error_body(
    exc: openai.APIStatusError, type_: str | None, code: str | None
) -> None:
    """openai's `.body` is the inner `error` object; `.type`/`.code` are copied from it."""
    assert isinstance(exc.body, dict)
    assert "error" not in exc.body
    assert exc.body["type"] == type_ and exc.body["code"] == code
    assert exc.type == type_ and exc.code == code
    assert str(exc) == f"Error code: {exc.status_code} - {exc.body['message']}"


def assert_whole_error_body(exc: anthropic.APIStatusError, type_: str) -> None:
    """anthropic's `.body` is the whole JSON; `.type` (2.x) and `.request_id` come from it."""
    body = exc.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str)
    assert exc.type == type_
    assert body["request_id"] == exc.request_id == exc.response.headers["request-id"]
    assert exc.message == f"Error code: {exc.status_code} - {body}"


def assert_error_body(sdk: Sdk, exc: Any, type_: str, code: str | None) -> None:
    if sdk.provider == "anthropic":
        assert code is None  # anthropic's errors carry a type only
        assert_whole_error_body(exc, type_)
    else:
        assert_inner_error_body(exc, type_, code)


def error_message(sdk: Sdk, exc: Any) -> str:
    """The error's own message: openai's `.message`; anthropic's inner `error.message` (its
    `.message` is `Error code: N - {the whole body}`)."""
    if sdk.provider == "anthropic":
        return str(exc.body["error"]["message"])
    return str(exc.message)


AZURE_ENDPOINT = "https://example-resource.openai.azure.com"


@contextmanager
def azure_client(flavor: str) -> Iterator[openai.AzureOpenAI]:
    """The openai SDK's Azure client, on its default client (httpx2) or a plain httpx one."""
    http_client = httpx.Client() if flavor == "httpx" else None
    with openai.AzureOpenAI(
        api_key=API_KEY,
        api_version="2024-10-21",
        azure_endpoint=AZURE_ENDPOINT,
        http_client=http_client,  # type: ignore[arg-type]
    ) as client:
        yield client


def applies(row: Any, sdk: Sdk) -> bool:
    """Whether a table's row runs on `sdk`: one of its providers (`row.provider` or
    `row.providers`), and, for an async client, a row of the async subset (`row.aio`)."""
    providers = getattr(row, "providers", (getattr(row, "provider", None),))
    return sdk.provider in providers and (not sdk.aio or getattr(row, "aio", False))


def rows_for(table: list[Any]) -> list[Any]:
    """Each row of `table` with each client it applies to (`applies`), as pytest params."""
    return [
        pytest.param(sdk, row, id=f"{sdk.id}-{row.name}")
        for row in table
        for sdk in (*SDKS, *ASYNC_SDKS)
        if applies(row, sdk)
    ]


Call = Callable[[Any, dict[str, str]], Any]
"""One case's call: `call(client, headers)`, the headers being the case's."""


def run_side_by_side(
    sdk: Sdk,
    cases: Mapping[str, tuple[Sequence[dict[str, Any]], Call]],
    sleeps: SdkSleeps | None = None,
) -> dict[str, Outcome]:
    """Every case of a table on one client of `sdk`, in one `inject()`: a case's faults act on
    its requests only (matched by its header), its call runs in its own thread and call scope
    (`run_concurrently`), so the table takes as long as its slowest case.

    On an async client the calls return coroutines: they run as tasks of one event loop
    (`asyncio.gather`), each in its own call scope (the scope is a context variable, and each
    task has its own context).
    """
    faults = [for_case(name, fault) for name, (mine, _) in cases.items() for fault in mine]
    if sdk.aio:
        return asyncio.run(_gather(sdk, cases, faults, sleeps or SdkSleeps()))
    with sdk_client(sdk) as client, aichaos.inject(faults):
        calls: dict[str, Callable[[dict[str, str]], Any]] = {
            name: functools.partial(call, client) for name, (_, call) in cases.items()
        }
        return run_concurrently(calls, sleeps or SdkSleeps())


async def _gather(
    sdk: Sdk,
    cases: Mapping[str, tuple[Sequence[dict[str, Any]], Call]],
    faults: list[dict[str, Any]],
    sleeps: SdkSleeps,
) -> dict[str, Outcome]:
    async def one(case: str, call: Call, client: Any) -> Outcome:
        with aichaos.call_scope(case) as scope:
            try:
                result = await call(client, {CASE_HEADER: case})
            except Exception as exc:
                return Outcome(None, exc, scope.attempts, sleeps.of(case))
            return Outcome(result, None, scope.attempts, sleeps.of(case))

    async with async_sdk_client(sdk) as client, aichaos.inject(faults):
        found = await asyncio.gather(
            *(one(name, call, client) for name, (_, call) in cases.items())
        )
    return dict(zip(cases, found, strict=True))


Outcomes = Callable[[Sdk], dict[str, Outcome]]
"""`outcomes(sdk)`: the outcome of every case of a table on that client, by name."""


def outcomes_fixture(run: Outcomes) -> Any:
    """A table module's `outcomes` fixture: `run(sdk)` done once per client, and kept."""
    done: dict[str, dict[str, Outcome]] = {}

    def of(sdk: Sdk) -> dict[str, Outcome]:
        if sdk.id not in done:
            done[sdk.id] = run(sdk)
        return done[sdk.id]

    @pytest.fixture(scope="module", name="outcomes")
    def outcomes() -> Outcomes:
        return of

    return outcomes


def baseline_texts() -> dict[str, str]:
    """Each provider's mock answer to the prompt when no fault acts (deterministic)."""
    found = {}
    with aichaos.inject():
        for sdk in (SDKS[0], SDKS[2]):
            with sdk_client(sdk) as client:
                found[sdk.provider] = answer_text(sdk, client, False, {})
    assert all(len(words(text)) >= 8 for text in found.values())
    return found
