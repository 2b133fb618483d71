"""An assistant that must answer JSON (`{"answer": ...}`) for a frontend to render.

Providers sometimes send a 200 whose body is not what it should be: broken
JSON (the SDK raises `json.JSONDecodeError`, not an API error), an empty body,
or valid JSON of the wrong shape (the SDK builds an object full of `None`).
This app validates what it got, retries once, then falls back to Claude.
"""

from __future__ import annotations

import json

import anthropic
import openai

primary = openai.OpenAI(max_retries=1, timeout=5.0)
fallback = anthropic.Anthropic(max_retries=1, timeout=10.0)


class BadAnswer(Exception):
    """The provider's 200 did not contain a usable answer."""


def ask_openai(prompt: str) -> dict[str, str]:
    try:
        reply = primary.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": 'Answer as JSON: {"answer": "..."}'},
                {"role": "user", "content": prompt},
            ],
            response_format={"type": "json_object"},
        )
        content = reply.choices[0].message.content  # wrong shapes fail here
        data = json.loads(content or "")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise BadAnswer(str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        raise BadAnswer(f"unexpected JSON: {str(data)[:80]}")
    return {"answer": data["answer"]}


def ask_claude(prompt: str) -> dict[str, str]:
    message = fallback.messages.create(
        model="claude-sonnet-4-6", max_tokens=512, messages=[{"role": "user", "content": prompt}]
    )
    return {"answer": "".join(b.text for b in message.content if b.type == "text")}


def answer(prompt: str) -> str:
    for _ in range(2):
        try:
            return json.dumps(ask_openai(prompt))
        except BadAnswer:
            continue
        except openai.APIError:
            break
    return json.dumps(ask_claude(prompt))
