"""An assistant that rides out rate limiting: the SDK honours `retry-after`, with more retries.

OpenAI's SDK sleeps for `retry-after-ms` / `retry-after` when the server sends it,
so a burst of 429s costs a little latency instead of failed requests.
"""

from __future__ import annotations

import openai

client = openai.OpenAI(max_retries=5, timeout=10.0)


def answer(prompt: str) -> str:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""
