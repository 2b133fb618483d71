"""A deliberately fragile assistant: one provider, SDK defaults, no fallback.

This is how many apps start. The `fragile-no-fallback` experiment shows what an
OpenAI outage does to it (and fails, as it should).
"""

from __future__ import annotations

import openai

client = openai.OpenAI()  # defaults: 2 retries with backoff, 10 minute timeout


def answer(prompt: str) -> str:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""
