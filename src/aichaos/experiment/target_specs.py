"""The `target:` section: exactly one of `python`, `http` or `command`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from aichaos.experiment.functions import FunctionSpec
from aichaos.experiment.section import Section
from aichaos.experiment.statuses import StatusPattern
from aichaos.units import Duration, Regex

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class PythonTarget(Section):
    """A function called in-process once per request, under the interception."""

    function: FunctionSpec = Field(description="`module:function` (sync or async) to call.")
    receives: Literal["prompt", "record"] = Field(
        "prompt",
        description="What the function is given: the prompt text, or the whole prompt record.",
    )

    _resolved: Callable[..., Any] | None = PrivateAttr(None)

    @property
    def resolved(self) -> Callable[..., Any]:
        """The imported function (set when the experiment is loaded)."""
        if self._resolved is None:
            raise RuntimeError(f"{self.function} was not imported (load the experiment first)")
        return self._resolved

    def bind(self, function: Callable[..., Any]) -> None:
        """Attach the imported function."""
        self._resolved = function


StreamFormat = Literal["openai", "anthropic", "gemini"]


class OutputSpec(Section):
    """Where the answer text is in an http target's answer: by a provider's format, or by a
    dotted JSON path (in each SSE event when the answer is an event stream)."""

    format: StreamFormat | None = Field(
        None,
        description="Read the answer as this provider's API answers (openai: Chat Completions or"
        " Responses; anthropic: Messages; gemini: generateContent), streamed (SSE) or whole. A"
        " stream without the provider's final event, or with an error event, is a failed call.",
    )
    path: str | None = Field(
        None,
        description="Dotted path to the text in the JSON body, or in each SSE event's data"
        " (the pieces are joined), e.g. `choices.0.delta.content`.",
    )
    end: str | None = Field(
        None,
        description="With `path` on an SSE answer: the event that ends the stream, by its"
        " `event:` name or its whole `data` (e.g. `[DONE]`); a stream without it is a failed"
        " call.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> OutputSpec:
        if (self.format is None) == (self.path is None):
            raise ValueError("output needs exactly one of `format` or `path`")
        if self.end is not None and self.path is None:
            raise ValueError("`end` goes with `path` (a format knows its own final event)")
        return self


class HttpTarget(Section):
    """An HTTP endpoint aichaos sends each request to. Strings may use `{{...}}` templates."""

    url: str = Field(description="Where to send each request, e.g. http://127.0.0.1:8000/chat.")
    method: str = Field("POST", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    json_body: Any = Field(
        None, alias="json", description="JSON body; `{{prompt}}` is replaced in its strings."
    )
    body: str | None = Field(None, description="A raw text body (instead of `json`).")
    stream: bool = Field(False, description="Read the answer as a stream (measures ttft).")
    success: list[StatusPattern] = Field(
        default_factory=lambda: list[int | str](["2xx"]),
        description="Statuses that count as success.",
    )
    output: OutputSpec | None = Field(
        None,
        description="Where the answer text is: a dotted path in a JSON response (e.g. `answer`"
        " or `choices.0.message.content`), or {format: openai | anthropic | gemini} for an"
        " answer in a provider's format (SSE streams included), or {path, end} per SSE event;"
        " default: the whole body.",
    )

    @field_validator("output", mode="before", json_schema_input_type=str | OutputSpec | None)
    @classmethod
    def _output_shorthand(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in _METHODS:
            raise ValueError(f"unknown HTTP method {value!r}; use one of {', '.join(_METHODS)}")
        return value.upper()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?://|\{\{)", value):
            raise ValueError(f"expected an http(s) URL like http://127.0.0.1:8000/x, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpTarget:
        self.refuse_both("json_body", "body")
        return self


class ReadySpec(Section):
    """When a started command is ready: a URL that answers, or a line on its output."""

    url: str | None = Field(None, description="Ready once a GET of this URL answers (any status).")
    line: Regex | None = Field(None, description="Ready once a line of output matches this regex.")
    timeout: Duration = Field(30.0, description="Give up (and show the output) after this long.")

    @model_validator(mode="after")
    def _one_way(self) -> ReadySpec:
        if (self.url is None) == (self.line is None):
            raise ValueError("ready needs exactly one of `url` or `line`")
        return self


class CommandTarget(Section):
    """A command aichaos starts, waits for, drives over HTTP and always stops."""

    run: str | list[str] = Field(description="The command line (split like a shell would).")
    cwd: str | None = Field(None, description="Working directory (relative to the experiment).")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    files: dict[str, str] = Field(
        default_factory=dict,
        description="NAME: TEMPLATE_PATH (relative to the experiment) rendered before start into"
        " a private temporary folder, with the variables of `run`; `{{files.NAME}}` is its path.",
    )
    ready: ReadySpec | None = Field(
        None, description="A URL that answers, or {line: REGEX} on the output."
    )
    http: HttpTarget = Field(description="How to send each request to the started app.")
    stop_timeout: Duration = Field(5.0, description="Wait this long after SIGTERM, then SIGKILL.")

    @field_validator("ready", mode="before", json_schema_input_type=str | ReadySpec | None)
    @classmethod
    def _ready_shorthand(cls, value: object) -> object:
        if isinstance(value, str):
            return {"url": value} if re.match(r"^(https?://|\{\{)", value) else {"line": value}
        return value

    @field_validator("run")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not (value.strip() if isinstance(value, str) else value):
            raise ValueError("the command is empty")
        return value


class Target(Section):
    """The system under test: exactly one of `python`, `http` or `command`."""

    python: PythonTarget | None = Field(
        None, description="`module:function`, or {function, receives}."
    )
    http: HttpTarget | None = Field(None, description="An app that is already running.")
    command: CommandTarget | None = Field(None, description="An app aichaos starts.")

    @field_validator("python", mode="before", json_schema_input_type=str | PythonTarget | None)
    @classmethod
    def _python_shorthand(cls, value: object) -> object:
        return {"function": value} if isinstance(value, str) else value

    @field_validator("http", mode="before", json_schema_input_type=str | HttpTarget | None)
    @classmethod
    def _http_shorthand(cls, value: object) -> object:
        return {"url": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [k for k in ("python", "http", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(f"a target is exactly one of python, http or command (got {what})")
        return self

    @property
    def kind(self) -> Literal["python", "http", "command"]:
        """Which kind of target this is."""
        if self.python is not None:
            return "python"
        return "http" if self.http is not None else "command"
