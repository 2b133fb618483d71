"""Reading what the mock needs from a request body, per dialect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tool:
    """A function the request offers, with its JSON schema."""

    name: str
    schema: dict[str, Any]


@dataclass
class Prompt:
    """The parts of a request that shape the mock's answer."""

    last_user: str = ""
    all_text: str = ""
    max_tokens: int | None = None
    tools: list[Tool] = field(default_factory=list)
    tool_result_last: bool = False  # the conversation ends with a tool result: answer in text
    tools_disabled: bool = False
    forced_tool: str | None = None  # tool_choice names one function
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(content: Any) -> str:
    """Text of a string or a list of typed parts (`text`, `input_text`, Gemini parts)."""
    if isinstance(content, str):
        return content
    texts = []
    for part in _l(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(_d(part).get("text"), str):
            texts.append(part["text"])
    return " ".join(texts)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_prompt(dialect: str, body: dict[str, Any]) -> Prompt:
    reader = _READERS.get(dialect)
    return reader(body) if reader else Prompt()


def _chat(body: dict[str, Any]) -> Prompt:
    messages = [_d(m) for m in _l(body.get("messages"))]
    users = [m for m in messages if m.get("role") == "user"]
    fmt = _d(body.get("response_format"))
    return Prompt(
        last_user=_text(users[-1].get("content")) if users else "",
        all_text=" ".join(_text(m.get("content")) for m in messages),
        max_tokens=_int(body.get("max_completion_tokens")) or _int(body.get("max_tokens")),
        tools=[
            Tool(
                str(_d(t.get("function")).get("name", "tool")),
                _d(_d(t.get("function")).get("parameters")),
            )
            for t in map(_d, _l(body.get("tools")))
            if t.get("type", "function") == "function"
        ],
        tool_result_last=bool(messages) and messages[-1].get("role") in ("tool", "function"),
        tools_disabled=body.get("tool_choice") == "none",
        forced_tool=_name(_d(_d(body.get("tool_choice")).get("function")).get("name")),
        json_schema=_d(_d(fmt.get("json_schema")).get("schema")) or None,
        json_mode=fmt.get("type") in ("json_object", "json_schema"),
    )


def _responses(body: dict[str, Any]) -> Prompt:
    raw = body.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else _l(raw)
    items = [_d(i) for i in items]
    users = [i for i in items if i.get("role") == "user"]
    fmt = _d(_d(body.get("text")).get("format"))
    instructions = body.get("instructions")
    return Prompt(
        last_user=_text(users[-1].get("content")) if users else "",
        all_text=" ".join(
            [instructions if isinstance(instructions, str) else ""]
            + [_text(i.get("content")) for i in items]
        ),
        max_tokens=_int(body.get("max_output_tokens")),
        tools=[
            Tool(str(t.get("name", "tool")), _d(t.get("parameters")))
            for t in map(_d, _l(body.get("tools")))
            if t.get("type") == "function"
        ],
        tool_result_last=bool(items) and items[-1].get("type") == "function_call_output",
        tools_disabled=body.get("tool_choice") == "none",
        forced_tool=_name(_d(body.get("tool_choice")).get("name")),
        json_schema=_d(fmt.get("schema")) or None,
        json_mode=fmt.get("type") in ("json_object", "json_schema"),
    )


def _messages(body: dict[str, Any]) -> Prompt:
    messages = [_d(m) for m in _l(body.get("messages"))]
    users = [m for m in messages if m.get("role") == "user"]
    last = users[-1].get("content") if users else None
    system = body.get("system")
    return Prompt(
        last_user=_text(last),
        all_text=" ".join([_text(system)] + [_text(m.get("content")) for m in messages]),
        max_tokens=_int(body.get("max_tokens")),
        tools=[
            Tool(str(t.get("name", "tool")), _d(t.get("input_schema")))
            for t in map(_d, _l(body.get("tools")))
            if "input_schema" in t
        ],
        tool_result_last=any(_d(b).get("type") == "tool_result" for b in _l(last))
        and bool(messages)
        and messages[-1].get("role") == "user",
        tools_disabled=_d(body.get("tool_choice")).get("type") == "none",
        forced_tool=_name(_d(body.get("tool_choice")).get("name")),
    )


def _gemini(body: dict[str, Any]) -> Prompt:
    contents = [_d(c) for c in _l(body.get("contents"))]
    users = [c for c in contents if c.get("role", "user") == "user"]
    last_parts = _l(users[-1].get("parts")) if users else []
    config = _d(body.get("generationConfig"))
    declarations = [
        _d(f) for t in _l(body.get("tools")) for f in _l(_d(t).get("functionDeclarations"))
    ]
    calling = _d(_d(body.get("toolConfig")).get("functionCallingConfig"))
    allowed = _l(calling.get("allowedFunctionNames"))
    system = _d(body.get("systemInstruction") or body.get("system_instruction"))
    return Prompt(
        last_user=_text(last_parts),
        all_text=" ".join(
            [_text(_l(system.get("parts")))] + [_text(_l(c.get("parts"))) for c in contents]
        ),
        max_tokens=_int(config.get("maxOutputTokens")),
        tools=[
            Tool(
                str(f.get("name", "tool")), _d(f.get("parameters") or f.get("parametersJsonSchema"))
            )
            for f in declarations
        ],
        tool_result_last=bool(contents)
        and any("functionResponse" in _d(p) for p in _l(contents[-1].get("parts"))),
        tools_disabled=calling.get("mode") == "NONE",
        forced_tool=_name(allowed[0]) if allowed else None,
        json_schema=_d(config.get("responseSchema") or config.get("responseJsonSchema")) or None,
        json_mode=config.get("responseMimeType") == "application/json",
    )


_READERS = {
    "chat_completions": _chat,
    "responses": _responses,
    "messages": _messages,
    "generate_content": _gemini,
}
