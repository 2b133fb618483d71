"""The clients that reach a backend over their own sockets, each as one streamed call.

Each `call(base)` makes one streamed chat call with the real library and reads the answer
to the end; `base` is a proxy's backend URL, or None for the provider's official host
(where `aichaos.inject()` catches it); `retries` is the SDK's own `max_retries` where it
has one, `timeout` the read timeout in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
OPENAI = "https://api.openai.com"


def _requests(base: str | None, retries: int, timeout: float) -> None:
    import requests

    url = f"{base or OPENAI}/v1/chat/completions"
    auth = {"authorization": "Bearer sk-test"}
    with requests.post(url, json=CHAT, headers=auth, stream=True, timeout=(5, timeout)) as r:
        for _ in r.iter_content(None):
            pass


def _aiohttp(base: str | None, retries: int, timeout: float) -> None:
    import aiohttp

    async def run() -> None:
        limits = aiohttp.ClientTimeout(sock_read=timeout)
        async with aiohttp.ClientSession(timeout=limits) as session:
            url = f"{base or OPENAI}/v1/chat/completions"
            async with session.post(url, json=CHAT) as response:
                await response.read()

    asyncio.run(run())


def _genai(base: str | None, retries: int, timeout: float) -> None:
    from google import genai
    from google.genai import types

    # HttpRetryOptions takes over genai's implicit retry of aiohttp disconnects (1-10 s waits)
    retry = types.HttpRetryOptions(attempts=retries + 1, initial_delay=0.05, max_delay=0.1)
    options = types.HttpOptions(base_url=base, timeout=int(timeout * 1000), retry_options=retry)
    client = genai.Client(api_key="test-key", http_options=options)

    async def run() -> None:
        stream = await client.aio.models.generate_content_stream(
            model="gemini-2.0-flash", contents="hi"
        )
        async for _ in stream:
            pass
        await client.aio.aclose()

    asyncio.run(run())


def _openai_aiohttp(base: str | None, retries: int, timeout: float) -> None:
    import openai

    async def run() -> None:
        async with openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=f"{base}/v1" if base else None,
            http_client=openai.DefaultAioHttpClient(),
            max_retries=retries,
            timeout=timeout,
        ) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for _ in stream:
                pass

    asyncio.run(run())


def _anthropic_aiohttp(base: str | None, retries: int, timeout: float) -> None:
    import anthropic

    async def run() -> None:
        async with anthropic.AsyncAnthropic(
            api_key="sk-ant-test",
            base_url=base,
            http_client=anthropic.DefaultAioHttpClient(),
            max_retries=retries,
            timeout=timeout,
        ) as client:
            stream = await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
            async for _ in stream:
                pass

    asyncio.run(run())


def _litellm(base: str | None, retries: int, timeout: float) -> None:
    import litellm

    async def run() -> None:
        stream: Any = await litellm.acompletion(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            api_base=f"{base}/v1" if base else None,
            api_key="sk-test",
            timeout=timeout,
            max_retries=retries,
        )
        async for _ in stream:
            pass

    asyncio.run(run())


CLIENTS: dict[str, tuple[str, Callable[[str | None, int, float], None]]] = {
    "requests": ("openai", _requests),
    "aiohttp": ("openai", _aiohttp),
    "google-genai-aio": ("gemini", _genai),
    "openai-aiohttp": ("openai", _openai_aiohttp),
    "anthropic-aiohttp": ("anthropic", _anthropic_aiohttp),
    "litellm": ("openai", _litellm),
}
"""Client name -> (backend it calls, call)."""
