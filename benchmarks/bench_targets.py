"""Targets for bench_runner.py."""

from __future__ import annotations

import functools

import httpx
import openai

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 2+2?"}]}


async def noop(prompt: str) -> str:
    return "ok"


def noop_sync(prompt: str) -> str:
    return "ok"


@functools.cache
def _httpx() -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"authorization": "Bearer sk-bench"})


@functools.cache
def _openai() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(max_retries=0, timeout=60.0)


async def mock_call(prompt: str) -> str:
    reply = await _httpx().post("https://api.openai.com/v1/chat/completions", json=BODY)
    return str(reply.json()["choices"][0]["message"]["content"])


async def sdk_call(prompt: str) -> str:
    reply = await _openai().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""
