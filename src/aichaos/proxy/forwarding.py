"""Forwarding to real upstreams: one pooled httpx transport, raw bytes both ways.

The proxy talks to the pool (`httpx.AsyncHTTPTransport`, the connection pool an
`httpx.AsyncClient` wraps) rather than to a client object, because a client adds
what a transparent proxy must not: default headers (`accept-encoding`,
`user-agent`), a cookie jar that would grow with every upstream `set-cookie`, and
decoding of compressed bodies. Responses are read as raw chunks as they arrive
(`response.stream`), so bodies pass byte for byte, compressed ones included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import httpx

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

_REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", CALL_HEADER}


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
    extra = _named_in_connection(raw)
    out = [
        (name, value)
        for name, value in raw
        if (low := name.lower()) not in _REQUEST_DROP
        and low not in extra
        and not (identity and low == b"accept-encoding")
    ]
    if identity:
        out.append((b"accept-encoding", b"identity"))
    return out


def response_headers(headers: Iterable[tuple[str, str]]) -> HeaderList:
    """Headers of an answer to send to the client: hop-by-hop ones dropped, names lower-case."""
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    extra = _named_in_connection(pairs)
    return [(k, v) for k, v in pairs if k not in HOP_BY_HOP and k not in extra]


def upstream_url(base: str, raw_rest: bytes, query: bytes) -> str:
    """`base` (scheme, host and optional path prefix) + the client's path and query, unchanged."""
    url = base + raw_rest.decode("latin-1")
    return f"{url}?{query.decode('latin-1')}" if query else url


class Forwarder:
    """Sends requests to real upstreams through one shared connection pool.

    `read_timeout` bounds silence from the upstream (None: wait as long as the
    client does; a client that gives up disconnects, which cancels the request).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 600.0,
        max_keepalive: int = 100,
        keepalive_expiry: float = 4.0,
        verify: bool = True,
    ) -> None:
        limits = httpx.Limits(
            max_connections=None,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=keepalive_expiry,
        )
        self._pool = httpx.AsyncHTTPTransport(limits=limits, verify=verify, retries=0)
        self._timeout = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": connect_timeout,
        }

    def build(self, method: str, url: str, headers: HeaderList, body: bytes) -> httpx.Request:
        return httpx.Request(
            method, url, headers=headers, content=body, extensions={"timeout": self._timeout}
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The upstream's response head; read `response.stream`, then `aclose()` it."""
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        await self._pool.aclose()


__all__ = [
    "CALL_HEADER",
    "HOP_BY_HOP",
    "Forwarder",
    "request_headers",
    "response_headers",
    "upstream_url",
]
