"""The text of an answer, whatever shape the target returned it in.

The attribute shapes read here (`choices[0].message.content`, `content[0].text`, `.text`,
a chunk's `delta`) are those of the SDKs' Python objects a user's function returns, not
wire facts: they stay here rather than in `providers/`, which describes what goes over HTTP.
"""

from __future__ import annotations

import json
from typing import Any


def text_of(value: Any) -> str:
    """A target's return value as text: str as is, SDK responses by their message, JSON else."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    sdk_text = _sdk_text(value)
    if sdk_text is not None:
        return sdk_text
    if hasattr(value, "model_dump_json"):
        return str(value.model_dump_json())
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def chunk_text(chunk: Any) -> str:
    """The text in one streamed chunk: a string, an OpenAI chunk or an Anthropic event."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, (bytes, bytearray)):
        return bytes(chunk).decode("utf-8", "replace")
    try:
        choices = getattr(chunk, "choices", None)
        if choices:
            return str(getattr(choices[0].delta, "content", None) or "")
        delta = getattr(chunk, "delta", None)
        if delta is not None:
            return str(getattr(delta, "text", None) or getattr(delta, "partial_json", None) or "")
        text = getattr(chunk, "text", None)  # Gemini chunks
        return text if isinstance(text, str) else ""
    except (AttributeError, IndexError, TypeError):
        return ""


def _sdk_text(value: Any) -> str | None:
    try:
        choices = getattr(value, "choices", None)
        if choices and hasattr(choices[0], "message"):  # OpenAI chat completion
            return str(choices[0].message.content or "")
        content = getattr(value, "content", None)
        if isinstance(content, list) and getattr(value, "role", None) == "assistant":  # Anthropic
            return "".join(getattr(block, "text", "") or "" for block in content)
        output_text = getattr(value, "output_text", None)  # OpenAI Responses
        if isinstance(output_text, str):
            return output_text
    except (AttributeError, IndexError, TypeError):
        return None
    return None


def is_stream(value: Any) -> bool:
    """Whether a return value is a stream to read (a generator or an SDK stream)."""
    if isinstance(value, (str, bytes, bytearray, dict, list, tuple)):
        return False
    return hasattr(value, "__next__") or hasattr(value, "__anext__")
