"""A streaming assistant that shows whatever text arrived: the app `incomplete_answers` catches.

It streams the answer and returns the text it received. When the connection drops
mid-stream it keeps what it has; when the stream just stops (no finish reason, no
`[DONE]`) the SDK ends the iteration quietly and it never notices. Every call
"succeeds", and some users read half an answer. Compare `streaming.py`.
"""

from __future__ import annotations

import openai

client = openai.OpenAI(max_retries=2, timeout=10.0)
MODEL = "gpt-4o-mini"


def answer(prompt: str) -> str:
    parts: list[str] = []
    try:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
        )
        for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
    except openai.APIConnectionError:
        pass  # show what we have: the bug this example is about
    return "".join(parts)
