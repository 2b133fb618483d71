"""Python targets for the experiment tests (`target: {python: experiment_targets:NAME}`)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import openai


@functools.cache
def _client() -> openai.OpenAI:
    return openai.OpenAI(max_retries=0, timeout=5.0)


@functools.cache
def _async_client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(max_retries=0, timeout=5.0)


def ask(prompt: str) -> str:
    reply = _client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""


async def ask_async(prompt: str) -> str:
    reply = await _async_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""


def ask_streaming(prompt: str) -> str:
    stream = _client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], stream=True
    )
    return "".join((c.choices[0].delta.content or "") for c in stream if c.choices)


def echo(prompt: str) -> str:
    return prompt


async def noop(prompt: str) -> str:
    return "ok"


def topic(record: dict[str, Any]) -> str:
    return f"{record['topic']}: {record['prompt']}"


def sleepy(prompt: str) -> str:
    time.sleep(float(prompt))
    return "slept"


async def async_sleepy(prompt: str) -> str:
    await anyio.sleep(float(prompt))
    return "slept"


def words(prompt: str) -> Iterator[str]:
    time.sleep(0.05)
    yield from ("one ", "two ", "three")


async def async_words(prompt: str) -> AsyncIterator[str]:
    await anyio.sleep(0.05)
    for word in ("one ", "two ", "three"):
        yield word


def leaky(prompt: str) -> str:
    """Fails with an error message carrying keys (as careless code does): the environment's,
    an Azure-shaped key and a URL with a password, neither of which aichaos was told about."""
    raise RuntimeError(
        f"could not call OpenAI with key {os.environ.get('OPENAI_API_KEY')}"
        f" nor Azure with api-key {PLANTED_AZURE_KEY}"
        f" via http://svc:{PLANTED_URL_PASSWORD}@10.0.0.7/openai"
    )


PLANTED_AZURE_KEY = "5f3c9e1a7b2d4f608e1c3a5b7d9f0e2c"
PLANTED_URL_PASSWORD = "planted-url-pass-93kd"


def touch(prompt: str) -> str:
    Path(os.environ["AICHAOS_TEST_MARKER"]).write_text("called")
    return "touched"


def not_a_function_value() -> None:
    """Placeholder so `experiment_targets:VALUE` can point at a non-callable."""


VALUE = 42


def count_calls(calls: list[Any]) -> float:
    return float(len(calls))


def all_ok(calls: list[Any]) -> tuple[bool, str]:
    return all(c.ok for c in calls), f"{len(calls)} calls"


def broken_check(calls: list[Any]) -> bool:
    raise ValueError("boom")
