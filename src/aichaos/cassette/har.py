"""Cassettes from HAR files (HTTP Archive 1.2, as browsers' developer tools and mitmproxy
export them).

Each HAR entry becomes one exchange, redacted like a recording. A HAR holds a streamed
answer as one text with no per-event times, so its events get the entry's receive time
spread evenly between them; the time to the answer's head is the entry's `wait` timing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aichaos.cassette import redaction
from aichaos.cassette.format import CassetteError, Interaction
from aichaos.cassette.recording import CassetteWriter, split_events
from aichaos.providers import closest_provider
from aichaos.wire.exchange import RequestInfo


def interactions_from_har(path: Path) -> list[Interaction]:
    """Every HTTP exchange in a HAR file. Raises CassetteError for a file that is not HAR."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["log"]["entries"]
        if not isinstance(entries, list):
            raise TypeError("log.entries is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CassetteError(f"{path}: not a HAR file ({type(exc).__name__}: {exc})") from None
    found = []
    for index, entry in enumerate(entries):
        try:
            found.append(_interaction(entry))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CassetteError(
                f"{path}: log.entries[{index}] is not an HTTP exchange ({type(exc).__name__}:"
                f" {exc})"
            ) from None
    return found


def import_har(path: Path, directory: Path) -> int:
    """Append the HAR file's exchanges to the cassette in `directory`; how many."""
    interactions = interactions_from_har(path)
    writer = CassetteWriter(directory)
    for interaction in interactions:
        writer.write(interaction)
    return len(interactions)


def _interaction(entry: dict[str, Any]) -> Interaction:
    request, response = entry["request"], entry["response"]
    url = urlsplit(str(request["url"]))
    headers = {str(h["name"]).lower(): str(h["value"]) for h in request.get("headers", [])}
    body = str((request.get("postData") or {}).get("text", "")).encode()
    info = RequestInfo(
        method=str(request["method"]).upper(),
        url=str(request["url"]),
        host=url.hostname or "",
        path=url.path or "/",
        query=url.query,
        headers=headers,
        body=body,
    )
    answer_headers = [(str(h["name"]), str(h["value"])) for h in response.get("headers", [])]
    content = response.get("content") or {}
    raw = str(content.get("text", ""))
    data = base64.b64decode(raw) if content.get("encoding") == "base64" else raw.encode()
    timings = entry.get("timings") or {}
    after = max(float(timings.get("wait", 0) or 0), 0.0) / 1000
    receive = max(float(timings.get("receive", 0) or 0), 0.0) / 1000
    mime = (
        str(content.get("mimeType", ""))
        + " "
        + dict((k.lower(), v) for k, v in answer_headers).get("content-type", "")
    )
    events: list[tuple[float, bytes]] | None = None
    if "text/event-stream" in mime:
        pieces = split_events(data)
        gap = receive / max(len(pieces) - 1, 1)
        events = [(0.0 if i == 0 else gap, redaction.text(p)) for i, p in enumerate(pieces)]
    provider = closest_provider(info.path).name
    return Interaction(
        method=info.method,
        path=info.path,
        query=redaction.query(info.query),
        request_headers=redaction.request_headers(headers),
        request_body=(
            redaction.value(info.json)
            if info.json is not None
            else (redaction.value(body.decode("utf-8", "replace")) if body else None)
        ),
        status=int(response["status"]),
        headers=redaction.answer_headers(
            [(k, v) for k, v in answer_headers if k.lower() != "content-encoding"]
        ),
        after=after,
        body=None if events is not None else redaction.text(data),
        events=events,
        outcome="complete",
        backend=provider,
        provider=provider,
        recorded=str(entry.get("startedDateTime", "")),
    )
