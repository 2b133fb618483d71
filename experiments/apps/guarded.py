"""An assistant that handles what users and providers throw at it.

- Empty input gets a prompt to ask something, without calling a model.
- A prompt over the context window is cut to its last part and asked again.
- A filtered answer (finish reason `content_filter`) becomes a polite refusal,
  never an empty reply or a raw error.
"""

from __future__ import annotations

import openai

client = openai.OpenAI(max_retries=1, timeout=10.0)
KEEP_CHARS = 4000  # what is kept of an over-long prompt
REFUSAL = "Sorry, I can't help with that request."
EMPTY = "Please type a question."


def ask(prompt: str) -> tuple[str, str | None]:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    choice = reply.choices[0]
    return choice.message.content or "", choice.finish_reason


def answer(prompt: str) -> str:
    if not prompt.strip():
        return EMPTY
    try:
        text, finish = ask(prompt)
    except openai.BadRequestError as exc:
        if exc.code != "context_length_exceeded":
            raise
        text, finish = ask(prompt[-KEEP_CHARS:])
    if finish == "content_filter" or not text.strip():
        return REFUSAL
    return text
