"""A support assistant: OpenAI first, Claude when OpenAI fails or is slow.

The primary client fails fast (no SDK retries, a short timeout) because the
fallback is ready; the fallback gets one retry.
"""

from __future__ import annotations

import anthropic
import openai

PRIMARY_TIMEOUT = 0.5  # seconds: beyond this the user is better served by the fallback

primary = openai.OpenAI(max_retries=0, timeout=PRIMARY_TIMEOUT)
fallback = anthropic.Anthropic(max_retries=1, timeout=10.0)


def ask_openai(prompt: str) -> str:
    reply = primary.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""


def ask_claude(prompt: str) -> str:
    message = fallback.messages.create(
        model="claude-sonnet-4-6", max_tokens=512, messages=[{"role": "user", "content": prompt}]
    )
    return "".join(block.text for block in message.content if block.type == "text")


def answer(prompt: str) -> str:
    try:
        return ask_openai(prompt)
    except openai.APIError:  # status errors, timeouts, connection errors
        return ask_claude(prompt)
