"""The `raw` fault: an exact answer copied from a bug report or a capture, replayed as given."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from aichaos.cassette.format import MAX_FILE_BYTES, CassetteError, Interaction
from aichaos.cassette.replay import answer_parts
from aichaos.faults.base import Fault
from aichaos.faults.plan import Plan
from aichaos.paths import UnreadableFile, open_regular_file, read_text_file
from aichaos.safe_yaml import compose, safe_load
from aichaos.units import Duration
from aichaos.wire.exchange import Abort, Part, Pause, Reply

_MAX_FILE = 4 * 1024 * 1024


def _compact_json(value: Any) -> str:
    """JSON as the providers write it (no spaces after `,` and `:`, UTF-8 kept): a mapping
    written in YAML comes out as a capture of the provider's own bytes would have it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RawEvent(BaseModel):
    """One SSE event of a raw answer, written out as given."""

    model_config = ConfigDict(extra="forbid")

    data: Any = Field(None, description="The data: a string as is, anything else as compact JSON.")
    event: str | None = Field(None, description="The `event:` field.")
    id: str | None = Field(None, description="The `id:` field.")
    comment: str | None = Field(None, description="A comment line (`: ...`).")
    delay: Duration = Field(0.0, description="Wait this long before the event.")

    def encode(self) -> bytes:
        lines = [] if self.comment is None else [f": {self.comment}"]
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.data is not None:
            text = self.data if isinstance(self.data, str) else _compact_json(self.data)
            lines += [f"data: {line}" for line in text.split("\n")]
        return ("\n".join(lines) + "\n\n").encode()


class RawAnswer(BaseModel):
    """An exact answer: what a `raw` fault or its `file` holds."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(200, ge=100, le=599, description="The status.")
    headers: list[tuple[str, str]] | dict[str, str] = Field(
        default_factory=list,
        description="Headers as given, in order (a list of [name, value] pairs allows repeats);"
        " nothing is added.",
    )
    body: str | dict[str, Any] | list[Any] | None = Field(
        None, description="The body: text as given, a mapping or list as compact JSON."
    )
    events: list[RawEvent] | None = Field(
        None, description="SSE events instead of a body, each with an optional `delay`."
    )
    end: Literal["clean", "reset"] = Field(
        "clean", description="How the connection ends after the answer: clean or reset."
    )

    @model_validator(mode="after")
    def _body_or_events(self) -> RawAnswer:
        if self.body is not None and self.events is not None:
            raise ValueError("give either `body` or `events`, not both")
        return self

    def parts(self) -> list[Part]:
        parts: list[Part] = []
        if self.body is not None:
            text = self.body if isinstance(self.body, str) else _compact_json(self.body)
            parts.append(text.encode())
        for event in self.events or ():
            if event.delay > 0:
                parts.append(Pause(event.delay))
            parts.append(event.encode())
        if self.end == "reset":
            parts.append(Abort("reset"))
        return parts

    def header_list(self) -> list[tuple[str, str]]:
        items = self.headers.items() if isinstance(self.headers, dict) else self.headers
        return [(str(name), str(value)) for name, value in items]


class Raw(Fault, RawAnswer):
    """An exact answer, given in the experiment or in a `file` next to it (YAML or JSON).

    The status, the headers as given and in order (no defaults added: no request id, no
    content type unless listed), then either a `body` or a list of SSE `events`, each with an
    optional `delay` before it, and how the connection ends (`clean`, or `reset` after the
    last byte). In-process the client sees exactly the headers given (case, order and repeats
    kept). Through the proxy, HTTP/1.1 framing is the one addition: `content-length` for a
    `body` (unless given), `transfer-encoding: chunked` for `events`, and `connection: close`
    when the client asked to close; names go out in lower case, and no `date` or `server` is
    added. Any shape copied from a bug report or a capture
    is replayed without new code; what the client then does is the client's own behaviour
    under that shape. A `file` is read when the fault is loaded (relative to the experiment);
    a file that cannot be read or does not fit is an error naming the file and line.
    `recorded: DIR/FILE.jsonl:LINE` answers with one exchange of a cassette
    (docs/record-replay.md), byte for byte with its recorded timing.
    """

    summary: ClassVar[str] = "an exact answer (status, headers, body or SSE events, end)"
    terminal: ClassVar[bool] = True
    kind: Literal["raw"] = "raw"
    file: str | None = Field(
        None, description="A YAML or JSON file holding the answer's keys (status, headers, ...)."
    )
    recorded: str | None = Field(
        None,
        description="One recorded exchange as the answer: `CASSETTE_FILE.jsonl:LINE` (a line of"
        " a cassette, relative to the experiment).",
    )
    _recorded: Interaction | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _read_recorded(self, info: ValidationInfo) -> Raw:
        if self.recorded is None:
            return self
        if self.body is not None or self.events is not None:
            raise ValueError("give either `recorded` or `body`/`events`, not both")
        base = (info.context or {}).get("base_dir") if info.context else None
        self._recorded = _load_recorded(self.recorded, None if base is None else Path(base))
        return self

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("file"), str):
            return data
        base = (info.context or {}).get("base_dir") if info.context else None
        path = Path(data["file"])
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        loaded = _load_answer(path)
        clash = sorted(set(loaded) & (set(data) - {"file"}) & set(RawAnswer.model_fields))
        if clash:
            raise ValueError(f"{', '.join(clash)} given both here and in {data['file']}")
        return {**data, **loaded}

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        recorded = self._recorded
        if recorded is not None:
            plan.reply = Reply(
                recorded.status, list(recorded.headers), list(answer_parts(recorded))
            )
        else:
            plan.reply = Reply(self.status, self.header_list(), self.parts())
        return True

    def label(self) -> str:
        return f"raw({self._recorded.status if self._recorded is not None else self.status})"


def _load_recorded(where: str, base: Path | None) -> Interaction:
    """The exchange at `FILE:LINE` of a cassette; errors name the file and line."""
    name, sep, number = where.rpartition(":")
    if not sep or not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"recorded {where!r}: write CASSETTE_FILE.jsonl:LINE, e.g. support/openai.jsonl:3"
        )
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        with open_regular_file(path, "cassette") as lines:  # not a pipe: it would block
            if os.fstat(lines.fileno()).st_size > MAX_FILE_BYTES:  # as a cassette directory
                raise ValueError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
            for index, raw in enumerate(lines, 1):
                if index == int(number):
                    line = raw.decode("utf-8", "replace")
                    return Interaction.from_line(line, f"{path}:{index}")
    except UnreadableFile as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except CassetteError as exc:
        raise ValueError(str(exc)) from None
    raise ValueError(f"{path} has no line {number}")


def _load_answer(path: Path) -> dict[str, Any]:
    """The answer in a file, checked; every problem names the file and line."""
    try:
        text = read_text_file(path, _MAX_FILE)
    except UnreadableFile as exc:
        raise ValueError(str(exc)) from None
    try:
        node = compose(text)  # JSON is YAML too; within the limits: the file may be hostile
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or exc
        raise ValueError(f"{path}{where}: not valid YAML or JSON ({reason})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} line 1: expected a mapping with status, headers, body or events")
    try:
        RawAnswer.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(node, first["loc"])
        key = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ValueError(f"{path} line {line}: {key}: {first['msg']}") from None
    return data


def _line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the value at `loc` in a composed YAML node (its parent's if gone)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for step in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == str(step)]
            if not match:
                return line
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return line
            node = node.value[step]
        else:
            return line
        line = node.start_mark.line + 1
    return line
