"""Which headers the proxy forwards, each way (RFC 9110 hop-by-hop rules).

Authorization and API-key headers are end-to-end: they are forwarded, and
never logged or recorded (records hold no headers at all).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

HeaderList = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Headers that describe one hop (RFC 9110 §7.6.1): never forwarded, either way."""

CALL_HEADER = b"x-aichaos-call"
"""Ties a request to a call of the experiment runner; stripped before forwarding."""

# `expect`: the proxy has the whole body already, so no 100-continue dance upstream.
_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"expect", CALL_HEADER}
_REQUEST_DROP_IDENTITY = _REQUEST_DROP | {b"accept-encoding"}  # asked for again, uncompressed


def _named_in_connection(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    return names


def request_headers(raw: Sequence[tuple[bytes, bytes]], *, identity: bool = False) -> HeaderList:
    """The client's headers to send upstream: end-to-end ones, in order, secrets included.

    `host` and `content-length` are set again for the upstream request. With
    `identity`, the upstream is asked for an uncompressed answer (the proxy is
    about to edit it).
    """
    drop = _REQUEST_DROP_IDENTITY if identity else _REQUEST_DROP
    for name, _ in raw:
        if name == b"connection":  # it names more hop-by-hop headers
            drop = drop | _named_in_connection(raw)
            break
    out = [(name, value) for name, value in raw if name.lower() not in drop]
    if identity:
        out.append((b"accept-encoding", b"identity"))
    return out


def response_headers(headers: Iterable[tuple[str, str]]) -> HeaderList:
    """Headers of an answer to send to the client: hop-by-hop ones dropped, names lower-case."""
    return end_to_end([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers])


def end_to_end(raw: Iterable[tuple[bytes, bytes]]) -> HeaderList:
    """Raw headers without the hop-by-hop ones (and those `connection` names), names lower-case."""
    out: HeaderList = []
    named: set[bytes] | None = None
    for name, value in raw:  # one pass: this runs for every answer
        low = name.lower()
        if low in HOP_BY_HOP:
            if low == b"connection":
                named = named or set()
                named.update(token.strip().lower() for token in value.split(b","))
            continue
        out.append((low, value))
    return out if not named else [(k, v) for k, v in out if k not in named]


def upstream_url(base: str, raw_rest: bytes, query: bytes) -> str:
    """`base` (scheme, host and optional path prefix) + the client's path and query, unchanged."""
    url = base + raw_rest.decode("latin-1")
    return f"{url}?{query.decode('latin-1')}" if query else url
