"""A streaming assistant that notices when a stream is cut short.

A stream can end early in two ways: the connection drops (the SDK raises
`APIConnectionError` mid-iteration, and never retries it), or it just stops,
without a finish reason or `[DONE]` (the SDK ends the iteration quietly). Both
leave a half answer. This app checks for a finish reason, streams again once,
and then asks without streaming, which a stream cut cannot touch.
"""

from __future__ import annotations

import openai

client = openai.OpenAI(max_retries=2, timeout=10.0)
STREAM_ATTEMPTS = 2
MODEL = "gpt-4o-mini"


class IncompleteStream(Exception):
    """The stream ended before the model finished its answer."""


def stream_once(prompt: str) -> str:
    parts: list[str] = []
    finish = None
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
    )
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        parts.append(choice.delta.content or "")
        finish = choice.finish_reason or finish
    if finish is None:
        raise IncompleteStream(f"stream ended after {len(parts)} chunks without a finish reason")
    return "".join(parts)


def answer(prompt: str) -> str:
    for _ in range(STREAM_ATTEMPTS):
        try:
            return stream_once(prompt)
        except (IncompleteStream, openai.APIConnectionError):
            continue
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""
