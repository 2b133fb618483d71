"""An assistant that knows a spent quota from a rate limit.

Both are 429s, and the OpenAI SDK retries both. A quota error (code
`insufficient_quota`) will not clear by waiting, so this app never retries it:
it opens a breaker that keeps OpenAI out of the path for a while and answers
from Claude. Plain rate limits are retried after `retry-after`.
"""

from __future__ import annotations

import threading
import time

import anthropic
import openai

QUOTA_BREAK = 60.0  # seconds OpenAI stays out of the path after a quota error
RATE_LIMIT_RETRIES = 2

primary = openai.OpenAI(max_retries=0, timeout=5.0)  # retries are decided here, not in the SDK
fallback = anthropic.Anthropic(max_retries=1, timeout=10.0)
_lock = threading.Lock()
_quota_open_until = 0.0


def _quota_spent() -> bool:
    return time.monotonic() < _quota_open_until


def _trip() -> None:
    global _quota_open_until
    with _lock:
        _quota_open_until = time.monotonic() + QUOTA_BREAK


def reset() -> None:
    """Close the breaker (tests and new runs start fresh)."""
    global _quota_open_until
    with _lock:
        _quota_open_until = 0.0


def ask_openai(prompt: str) -> str:
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            reply = primary.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content or ""
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota" or attempt == RATE_LIMIT_RETRIES:
                raise
            wait = float(exc.response.headers.get("retry-after-ms", "500")) / 1000
            time.sleep(min(wait, 2.0))
    raise AssertionError("unreachable")


def answer(prompt: str) -> str:
    if not _quota_spent():
        try:
            return ask_openai(prompt)
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota":
                _trip()
        except openai.APIError:
            pass
    message = fallback.messages.create(
        model="claude-haiku-4-5", max_tokens=512, messages=[{"role": "user", "content": prompt}]
    )
    return "".join(block.text for block in message.content if block.type == "text")
