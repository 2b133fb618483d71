"""An assistant with a circuit breaker in front of OpenAI and Claude behind it.

During a brownout (a growing share of OpenAI requests failing) each failure
would cost a wasted attempt; after `THRESHOLD` failures in a row the breaker
opens and calls go straight to Claude for `COOL_OFF` seconds, then one probe
tries OpenAI again.
"""

from __future__ import annotations

import threading
import time

import anthropic
import openai

THRESHOLD = 3
COOL_OFF = 0.3  # seconds

primary = openai.OpenAI(max_retries=0, timeout=2.0)
fallback = anthropic.Anthropic(max_retries=1, timeout=10.0)


class Breaker:
    """Opens after `threshold` consecutive failures; lets a probe through after `cool_off`."""

    def __init__(self, threshold: int, cool_off: float) -> None:
        self.threshold, self.cool_off = threshold, cool_off
        self.failures = 0
        self.opened_at: float | None = None
        self.lock = threading.Lock()

    def allow(self) -> bool:
        with self.lock:
            if self.opened_at is None:
                return True
            if time.monotonic() - self.opened_at >= self.cool_off:
                self.opened_at = time.monotonic()  # half-open: one probe per cool-off
                return True
            return False

    def record(self, ok: bool) -> None:
        with self.lock:
            if ok:
                self.failures, self.opened_at = 0, None
            else:
                self.failures += 1
                if self.failures >= self.threshold:
                    self.opened_at = time.monotonic()


breaker = Breaker(THRESHOLD, COOL_OFF)


def answer(prompt: str) -> str:
    if breaker.allow():
        try:
            reply = primary.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
            )
            breaker.record(True)
            return reply.choices[0].message.content or ""
        except openai.APIError:
            breaker.record(False)
    message = fallback.messages.create(
        model="claude-sonnet-4-6", max_tokens=512, messages=[{"role": "user", "content": prompt}]
    )
    return "".join(block.text for block in message.content if block.type == "text")
