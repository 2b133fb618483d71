"""Requests, replies and body parts, independent of any HTTP library."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from aichaos.wire.jsoncodec import compact_json as compact_json  # the hot paths' JSON
from aichaos.wire.jsoncodec import json_bytes, load_json


class JSONBytes(bytes):
    """A body encoded here from `value`: its readers (usage metering) take `value` instead
    of parsing the bytes back (the mock's answers, in-process and through the proxy)."""

    value: Any

    @classmethod
    def of(cls, value: Any) -> JSONBytes:
        data = cls(json_bytes(value))
        data.value = value
        return data


@dataclass(frozen=True)
class Pause:
    """Wait this long before producing the next part of the body."""

    seconds: float


@dataclass(frozen=True)
class Hang:
    """Produce nothing more until the client gives up (its read timeout), or `limit` seconds."""

    limit: float | None = None


AbortReason = Literal["reset", "refused", "timeout"]


@dataclass(frozen=True)
class Abort:
    """The connection fails: reset by the peer, refused, or timed out while reading."""

    reason: AbortReason = "reset"
    message: str = "peer closed connection without sending complete message body"


Part = bytes | Pause | Hang | Abort


class ParsedOnce:
    """Gives a dataclass `json`: its JSON text (`_json_text`) parsed on first use; None when
    empty or not JSON. The dataclass declares the `_json` and `_parsed` fields it caches in."""

    _json: Any
    _parsed: bool

    def _json_text(self) -> str | bytes:
        raise NotImplementedError

    @property
    def json(self) -> Any:
        if not self._parsed:
            self._parsed = True
            text = self._json_text()
            try:
                self._json = load_json(text) if text else None
            except ValueError:
                self._json = None
        return self._json


@dataclass
class RequestInfo(ParsedOnce):
    """What the engine needs to know about one request, already read into memory."""

    method: str
    url: str
    host: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    backend: str = ""
    provider: str = ""
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def _json_text(self) -> bytes:
        return self.body

    @property
    def json_object(self) -> dict[str, Any]:
        data = self.json
        return data if isinstance(data, dict) else {}

    @property
    def model(self) -> str | None:
        """The model asked for: in the body (OpenAI, Anthropic) or the path (Gemini, Azure)."""
        model = self.json_object.get("model")
        if isinstance(model, str):
            return model
        for marker in ("/models/", "/deployments/"):
            if marker in self.path:
                tail = self.path.split(marker, 1)[1]
                return tail.split("/", 1)[0].split(":", 1)[0] or None
        return None

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed response."""
        if self.json_object.get("stream") is True:
            return True
        return ":streamGenerateContent" in self.path


@dataclass
class Reply:
    """A complete response description: status, headers and a body made of parts.

    `body` is an iterable of parts; it may be a lazy generator so that a long
    stream is produced event by event and never held in memory as a whole.
    """

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[Part] = ()

    @classmethod
    def json(cls, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        return cls(
            status, [("content-type", "application/json"), *headers], [JSONBytes.of(payload)]
        )

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def with_header(self, name: str, value: str) -> Reply:
        lname = name.lower()
        headers = [(k, v) for k, v in self.headers if k.lower() != lname]
        headers.append((name, value))
        return Reply(self.status, headers, self.body)

    def parts(self) -> Iterator[Part]:
        return iter(self.body)
