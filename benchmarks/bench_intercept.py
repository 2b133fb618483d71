"""In-process interception cost, as ratios against a baseline measured in the same run.

Baseline: an `httpx.AsyncClient` whose transport is an `httpx.MockTransport` returning a
pre-rendered chat completion (the cheapest possible in-process answer). Then the same client
shape intercepted by `aichaos.inject()` and answered by the embedded mock, with no fault,
with a fault that never fires, with a response edit (corrupt_text) and streaming.

    python benchmarks/bench_intercept.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import httpx

import aichaos

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is 2+2?"}]}
URL = "https://api.openai.com/v1/chat/completions"


async def drive(send: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> float:
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            await send()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - start)


async def main(requests: int, concurrency: int) -> None:
    canned = json.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Four."},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    ).encode()  # fmt: skip
    baseline_client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=canned))
    )

    async def baseline() -> None:
        response = await baseline_client.post(URL, json=BODY)
        response.raise_for_status()

    client = httpx.AsyncClient()

    async def intercepted() -> None:
        response = await client.post(URL, json=BODY)
        response.raise_for_status()

    async def streamed() -> None:
        async with client.stream("POST", URL, json={**BODY, "stream": True}) as response:
            async for _ in response.aiter_bytes():
                pass

    await drive(baseline, 200, concurrency)  # warm up
    base = await drive(baseline, requests, concurrency)
    rows = [("httpx.MockTransport baseline", base, None)]
    never = {"kind": "outage", "probability": 0.0}
    slow0 = {"kind": "slow_stream", "ttft": 0, "inter_token": 0}
    scenarios: list[tuple[str, list[dict[str, object]], Callable[[], Awaitable[None]]]] = [
        ("intercepted, mock answer, no fault", [], intercepted),
        ("intercepted + fault that never fires", [never], intercepted),
        ("intercepted + corrupt_text edit", [{"kind": "corrupt_text"}], intercepted),
        ("intercepted streaming, no fault", [], streamed),
        ("intercepted streaming + slow_stream(0)", [slow0], streamed),
    ]
    for name, faults, send in scenarios:
        with aichaos.inject(faults) as chaos:
            await drive(send, 200, concurrency)
            chaos.recorder.clear()
            rate = await drive(send, requests, concurrency)
        rows.append((name, rate, rate / base))

    tracemalloc.start()
    with aichaos.inject() as chaos:
        await drive(intercepted, 2000, concurrency)
        chaos.recorder.clear()
        before = tracemalloc.get_traced_memory()[0]
        await drive(intercepted, 5000, concurrency)
        per_attempt = (tracemalloc.get_traced_memory()[0] - before) / 5000
    tracemalloc.stop()

    print(f"{'scenario':<42} {'req/s':>9} {'vs baseline':>12}")
    for name, rate, ratio in rows:
        print(f"{name:<42} {rate:>9.0f} {'' if ratio is None else f'{ratio:>11.2f}x'}")
    print(f"memory retained per recorded attempt: {per_attempt:.0f} bytes")
    await baseline_client.aclose()
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
