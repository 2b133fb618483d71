"""The cassette file format, version 1.

A cassette is a directory of `*.jsonl` files (one per backend when recorded by aichaos);
each line is one exchange, a JSON object with sorted keys, so a re-recording diffs line
by line:

    {"v": 1, "backend": "openai", "provider": "openai", "recorded": "2026-11-30T15:00:00Z",
     "request": {"method": "POST", "path": "/v1/chat/completions", "query": "",
                 "headers": {"content-type": "application/json"}, "body": {...}},
     "response": {"status": 200, "headers": [["content-type", "text/event-stream"], ...],
                  "after": 0.412,                       # seconds until the answer's head
                  "events": [[0.0, "data: {...}\\n\\n"], [0.031, "data: [DONE]\\n\\n"]]},
     "outcome": "complete"}

`request.body` is the JSON body (or `body_text` for any other text); `response` carries
`body` (text), `body_b64` (bytes that are not UTF-8) or `events` (an event stream: each
event's raw text with the seconds since the previous one, the first since the head).
`outcome` is how the answer ended (`aichaos.records.Outcome`). Blank lines and lines
starting with `#` are ignored. Nothing in a cassette is a credential (`redaction`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
SUFFIX = ".jsonl"
MAX_FILE_BYTES = 256 * 1024 * 1024
"""Larger cassette files are refused (a cassette is read whole into memory)."""


class CassetteError(ValueError):
    """A cassette that cannot be read; the message names the file and line."""


@dataclass
class Interaction:
    """One recorded exchange (see the module docstring for the fields)."""

    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    query: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: Any = None  # JSON value, or str (`body_text`), or None
    after: float = 0.0
    body: bytes | None = None
    events: list[tuple[float, bytes]] | None = None
    outcome: str = "complete"
    backend: str = ""
    provider: str = ""
    recorded: str = ""
    where: str = ""  # file:line it was read from

    def to_line(self) -> str:
        request: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.request_headers,
        }
        if isinstance(self.request_body, str):
            request["body_text"] = self.request_body
        elif self.request_body is not None:
            request["body"] = self.request_body
        response: dict[str, Any] = {
            "status": self.status,
            "headers": [list(pair) for pair in self.headers],
            "after": round(self.after, 6),
        }
        if self.events is not None:
            response["events"] = [
                [round(delay, 6), data.decode("utf-8", "replace")] for delay, data in self.events
            ]
        elif self.body is not None:
            try:
                response["body"] = self.body.decode("utf-8")
            except UnicodeDecodeError:
                response["body_b64"] = base64.b64encode(self.body).decode()
        line = {
            "v": VERSION,
            "backend": self.backend,
            "provider": self.provider,
            "recorded": self.recorded,
            "request": request,
            "response": response,
            "outcome": self.outcome,
        }
        return json.dumps(line, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))

    @classmethod
    def from_line(cls, text: str, where: str) -> Interaction:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CassetteError(f"{where}: not a JSON line ({exc})") from None
        if not isinstance(data, dict):
            raise CassetteError(f"{where}: each line is a JSON object, not {type(data).__name__}")
        version = data.get("v")
        if version != VERSION:
            raise CassetteError(
                f"{where}: cassette format version {version!r}; this aichaos reads version"
                f" {VERSION} (record it again, or upgrade aichaos)"
            )
        try:
            request, response = data["request"], data["response"]
            events = response.get("events")
            body: bytes | None = None
            if "body_b64" in response:
                body = base64.b64decode(response["body_b64"])
            elif "body" in response:
                body = str(response["body"]).encode()
            return cls(
                method=str(request["method"]).upper(),
                path=str(request["path"]),
                query=str(request.get("query", "")),
                request_headers={str(k): str(v) for k, v in request.get("headers", {}).items()},
                request_body=request.get("body", request.get("body_text")),
                status=int(response["status"]),
                headers=[(str(k), str(v)) for k, v in response.get("headers", [])],
                after=float(response.get("after", 0.0)),
                body=body,
                events=None
                if events is None
                else [(float(delay), str(raw).encode()) for delay, raw in events],
                outcome=str(data.get("outcome", "complete")),
                backend=str(data.get("backend", "")),
                provider=str(data.get("provider", "")),
                recorded=str(data.get("recorded", "")),
                where=where,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CassetteError(
                f"{where}: not an exchange of cassette format {VERSION}"
                f" ({type(exc).__name__}: {exc}); see docs/record-replay.md"
            ) from None


def read_cassette_dir(directory: Path) -> list[Interaction]:
    """Every exchange in `directory`'s `*.jsonl` files, in file-name and line order.

    Raises CassetteError (naming the file and line) for a missing directory, an empty one,
    or a line that is not an exchange.
    """
    if not directory.is_dir():
        raise CassetteError(f"{directory}: no such cassette directory")
    files = sorted(p for p in directory.iterdir() if p.suffix == SUFFIX and p.is_file())
    if not files:
        raise CassetteError(f"{directory}: no {SUFFIX} cassette files in it")
    found: list[Interaction] = []
    for path in files:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CassetteError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    found.append(Interaction.from_line(line, f"{path}:{number}"))
    return found
