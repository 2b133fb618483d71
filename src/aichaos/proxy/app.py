"""The chaos proxy as a plain ASGI application (no framework).

`/<backend>/<rest>` goes to that backend's upstream + `<rest>`: the embedded mock
or a real URL. Each request is one exchange of the same `Session` as in-process
injection, played by its `ExchangeLife` (`aichaos.exchange`); this module interprets
the life's actions over ASGI:

* the answer goes straight to the client as the life hands it out (no buffering
  unless a body edit needs the whole body; an answer that arrived whole goes out
  in one write with its `content-length`);
* a failure closes the client's TCP connection for real (see `connections`); a hang
  holds it until the client gives up (the client enforces its own read timeout);
* a client that disconnects cancels the exchange, and with it the upstream request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from urllib.parse import urlsplit

from aichaos.exchange import actions, driver
from aichaos.exchange.asgi import send_reply
from aichaos.intercept.session import Exchange, Session
from aichaos.providers import closest_provider, get_provider
from aichaos.proxy.admin import PREFIX, AdminAPI
from aichaos.proxy.body import (
    DEFAULT_MAX_BODY,
    INSPECT_BODY,
    BodyTooLarge,
    ClientGone,
    RequestBody,
    length_value,
)
from aichaos.proxy.connections import ConnectionRegistry
from aichaos.proxy.downstream import Downstream
from aichaos.proxy.forwarding import (
    Forwarder,
    RequestBodyError,
    UpstreamError,
    UpstreamPoolExhausted,
    UpstreamResponse,
    UpstreamTimeout,
)
from aichaos.proxy.headers import (
    CALL_HEADER,
    end_to_end,
    request_headers,
    response_headers,
    upstream_url,
)
from aichaos.proxy.stats import ProxyStats
from aichaos.records import call_scope
from aichaos.secret_shapes import scrub
from aichaos.wire.asgi import Receive, Scope, Send, read_request
from aichaos.wire.exchange import Reply, RequestInfo

_LABELS: dict[actions.FailKind, str] = {
    "reset": "connection_reset",
    "refused": "connection_refused",
    "timeout": "timeout",
}
"""How a failed connection is named in the proxy's records."""
_CALL = CALL_HEADER.decode()
_ADMIN = PREFIX + "/"


class _Upstream:
    """The real upstream's side of one exchange: its answer, once asked for."""

    __slots__ = ("close_client", "length", "query", "raw_headers", "raw_path", "response", "rest")

    def __init__(self, raw_path: bytes, query: bytes, raw_headers: list[tuple[bytes, bytes]]):
        self.raw_path, self.query, self.raw_headers = raw_path, query, raw_headers
        self.response: UpstreamResponse | None = None
        self.rest: AsyncIterator[bytes] | None = None  # the body still to stream upstream
        self.length: int | None = None  # the whole body's size, when the client declared it
        self.close_client = False  # the client's body was refused midway: close its connection

    @property
    def response_ready(self) -> bool:
        """Whether reading the answer's next chunk would not wait (it arrived, or the end)."""
        return self.response is not None and self.response.ready


_NO_BODY = frozenset({204, 304})


def _info_headers(
    raw: Iterable[tuple[bytes, bytes]],
) -> tuple[dict[str, str], str | None, int | None]:
    """The request's headers for its `RequestInfo`, its call id, its declared length (as
    `declared_length` reads it): one pass over the headers."""
    headers: dict[str, str] = {}
    call_id = None
    length: bytes | None = None
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == _CALL:
            call_id = value
            continue
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
            continue
        headers[name] = value
        if name == "content-length":
            length = raw_value
    return headers, call_id, None if length is None else length_value(length)


class ProxyApp:
    """ASGI app of the chaos proxy for one `Session`.

    `connections` must be wired into the server (`serve_proxy` does) for
    connection-level faults to close the client's socket; `stats` counts what
    passes; `admin` serves `/_aichaos/...` unless disabled. A request body over
    `max_body` bytes is answered with the provider's 413 without being read further.
    A body longer than `inspect_body` bytes is streamed upstream as it arrives unless
    the exchange needs it whole (`_needs_whole_body`); the exchange sees its first bytes.
    """

    def __init__(
        self,
        session: Session,
        *,
        admin: bool = True,
        admin_token: str | None = None,
        forwarder: Forwarder | None = None,
        stats: ProxyStats | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        inspect_body: int = INSPECT_BODY,
    ) -> None:
        self.session = session
        self.max_body, self.inspect_body = max_body, inspect_body
        self.stats = stats or ProxyStats()
        self.forwarder = forwarder or Forwarder()
        self.connections = ConnectionRegistry()
        self.admin = AdminAPI(session, self.stats, token=admin_token) if admin else None
        self._hosts: dict[str, str] = {}

    async def aclose(self) -> None:
        """Close the upstream connection pool."""
        await self.forwarder.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == PREFIX or path.startswith(_ADMIN):
                if self.admin is not None:
                    await self.admin(scope, receive, send)
                    return
            else:
                backend, _, rest = path[1:].partition("/")
                if backend in self.session.backends:
                    raw_path: bytes = scope.get("raw_path") or path.encode()
                    raw_rest = b"/" + raw_path[1:].partition(b"/")[2]
                    await self._proxy(scope, receive, send, backend, raw_rest, "/" + rest)
                    return
            await self._not_found(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = await read_request(scope, receive)
        names = ", ".join(self.session.backends)
        if info.path == "/" and info.method == "GET":
            reply = Reply.json(200, {"aichaos": "proxy", "backends": list(self.session.backends)})
        else:
            path = scrub(info.path)  # a key a client put in the path is not echoed
            message = f"aichaos proxy: no backend for {path}; route as /<backend>/<path>"
            reply = closest_provider(info.path).error(
                info, 404, message=f"{message} with a backend among: {names}"
            )
        await send_reply(reply, send)

    # --- one proxied exchange ------------------------------------------------
    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        backend: str,
        raw_rest: bytes,
        rest: str,
    ) -> None:
        spec = self.session.backends[backend]
        raw_headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        headers, call_id, declared = _info_headers(raw_headers)
        query: bytes = scope.get("query_string", b"")
        base = spec.upstream if spec.is_remote else "http://mock"
        info = RequestInfo(
            method=scope["method"],
            url=upstream_url(base, raw_rest, query),
            host=self._host(backend, spec.upstream),
            path=rest,
            query=query.decode("latin-1"),
            headers=headers,
            body=b"",
        )
        body = RequestBody(receive, self.max_body)
        upstream = _Upstream(raw_rest, query, raw_headers)
        try:
            if declared is not None and declared > self.max_body:
                raise BodyTooLarge
            first = await body.head(self.inspect_body)
            if first is not None and not body.ended and self._needs_whole_body(backend):
                first = await body.all(first)
        except BodyTooLarge:
            await self._too_large(spec.provider, info, send)
            return
        if first is None:
            return
        info.body = first
        if not body.ended:  # streamed: what follows goes upstream as it arrives
            upstream.rest, upstream.length = body.rest(), declared
        if call_id is None:
            exchange = self.session.begin(backend, info)
        else:
            with call_scope(call_id):
                exchange = self.session.begin(backend, info)
        self.stats.opened(backend)
        life = self.session.life(exchange, on_end=self.stats.closed)
        down = Downstream(scope, receive, send, self.connections)
        task = asyncio.current_task()
        assert task is not None
        down.watch(task, body)
        try:
            await self._play(life, exchange, down, upstream)
        except ClientGone:  # the client left while its body was being streamed upstream
            down.gone = True
        except asyncio.CancelledError:
            if not down.gone:
                raise  # cancelled from outside (server shutdown): cleanup below, then stop
            if hasattr(task, "uncancel"):
                task.uncancel()  # our own cancellation: the client left, the exchange is over
        finally:
            down.unwatch()
            if upstream.response is not None:
                upstream.response.release()  # unread: the upstream connection is closed
            if not life.ended:
                gone = down.gone and not down.dropped
                life.abandoned(
                    ("timeout" if down.holding else "client_disconnected") if gone else "incomplete"
                )
        if down.unsupported_drop:
            raise ConnectionAbortedError("aichaos proxy: connection dropped by a fault")

    def _needs_whole_body(self, backend: str) -> bool:
        """Whether an exchange must have the whole body before it begins: the mock and a
        replay answer from it, a recording keeps it, and a fault may act on the model or
        stream flag, which a large body can name at its very end."""
        spec = self.session.backends[backend]
        return (
            not spec.is_remote or spec.record is not None or self.session.engine.may_act_on(backend)
        )

    def _host(self, backend: str, upstream: str) -> str:
        host = self._hosts.get(backend)
        if host is None:
            host = self._hosts[backend] = urlsplit(upstream).hostname or upstream
        return host

    async def _play(
        self, life: driver.ExchangeLife, exchange: Exchange, down: Downstream, upstream: _Upstream
    ) -> None:
        """Carry out the life's actions for the client at the other end of `down`."""
        action = life.send(None)
        while action is not actions.FINISH:
            result: object = None
            if isinstance(action, actions.SendBytes):
                await down.body(action.data, action.last)
                action = life.send(None)
                continue
            if down.head is not None and not (
                action is actions.READ_UPSTREAM and upstream.response_ready
            ):
                await down.flush()  # the head goes out before anything that may wait
            if isinstance(action, actions.Wait):
                down.holding = action.hang  # a disconnect now is the client timing out
                await asyncio.sleep(action.seconds)
                down.holding = False
            elif action is actions.READ_UPSTREAM:
                assert upstream.response is not None
                try:
                    result = await anext(upstream.response, None)
                except UpstreamError as exc:  # the upstream failed mid-answer: so does the client
                    life.failed("reset", f"upstream_{exc.label}")
                    await down.drop()
                    return
            elif action is actions.FETCH_UPSTREAM:
                result = await self._forward(exchange, upstream, life.edits_answer)
            elif isinstance(action, actions.StartAnswer):
                down.start(action.status, self._head(action, life.edits_answer, upstream))
            else:
                assert isinstance(action, actions.Fail)
                life.failed(action.kind, _LABELS[action.kind])
                await down.drop()
                return
            action = life.send(result)
        await down.end()

    async def _too_large(self, provider: str, info: RequestInfo, send: Send) -> None:
        """The provider's 413, before reading more: the client need not send the rest."""
        await send_reply(self._too_large_reply(provider, info), send)

    def _too_large_reply(self, provider: str, info: RequestInfo) -> Reply:
        limit = self.max_body / (1024 * 1024)
        message = (
            f"aichaos proxy: request body over the proxy's limit of {limit:g} MiB (--max-body)"
        )
        return (
            get_provider(provider)
            .error(info, 413, message=message)
            .with_header("connection", "close")
        )

    @staticmethod
    def _head(
        head: actions.StartAnswer, edits: bool, upstream: _Upstream
    ) -> list[tuple[bytes, bytes]]:
        """The answer's headers for the client: a real upstream's as received unless a fault
        `edits` the answer, never hop-by-hop ones; `content-length` when the body is whole."""
        response = upstream.response
        if response is not None and not edits:
            headers = end_to_end(response.headers)
        else:
            headers = response_headers(head.headers)
        if upstream.close_client:
            headers.append((b"connection", b"close"))
        if head.status in _NO_BODY:  # RFC 9110 8.6: no content-length on 1xx and 204; a 304's
            return headers  # would describe the cached answer, which the proxy does not know
        if head.length is not None:
            for name, _ in headers:
                if name == b"content-length":
                    return headers
            headers.append((b"content-length", b"%d" % head.length))
        return headers

    async def _forward(
        self, exchange: Exchange, upstream: _Upstream, edits: bool
    ) -> actions.UpstreamAnswer:
        """The upstream's answer (`edits`: a fault edits it, so it is asked for uncompressed
        and not taken whole), or the provider's error when the upstream cannot answer."""
        info = exchange.info
        # a cassette keeps answers readable: ask for them uncompressed when recording
        identity = edits or exchange.spec.record is not None
        headers = request_headers(upstream.raw_headers, identity=identity)
        try:
            response = await self.forwarder.request(
                info.method,
                exchange.spec.upstream,
                upstream.raw_path,
                upstream.query,
                headers,
                info.body,
                upstream.rest,
                upstream.length,
            )
        except RequestBodyError as exc:
            if isinstance(exc.cause, ClientGone):
                raise exc.cause from None
            upstream.close_client = True  # the rest of the body is never read
            reply = self._too_large_reply(exchange.spec.provider, info)
        except UpstreamError as exc:
            self.stats.upstream_errors += 1
            reply = self._upstream_down(exchange, exc)
        else:
            upstream.response = response
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
            # An answer that arrived whole (most non-streamed ones) goes out in one write.
            whole = response.complete and not response.head_only and not edits
            body = response.take_all() if whole else None
            return actions.UpstreamAnswer(response.status, pairs, body)
        body = [part for part in reply.parts() if isinstance(part, bytes)]
        return actions.UpstreamAnswer(reply.status, reply.headers, body)

    @staticmethod
    def _upstream_down(exchange: Exchange, exc: UpstreamError) -> Reply:
        """The provider's own 502 for an upstream that cannot be reached (504 on a timeout,
        503 when the proxy's connection pool to it is full)."""
        origin = urlsplit(exchange.spec.public_upstream)
        where = f"{origin.scheme}://{origin.netloc}"  # never the path or query: keys hide there
        if isinstance(exc, UpstreamTimeout):
            status, what = 504, "did not answer in time"
        elif isinstance(exc, UpstreamPoolExhausted):
            status, what = 503, f"has every allowed connection busy: {exc}"
        elif "TLS" in str(exc):
            status, what = 502, f"cannot be reached: {exc}"
        else:
            status, what = 502, "cannot be reached"
        reply = get_provider(exchange.spec.provider).error(
            exchange.info,
            status,
            message=f"aichaos proxy: upstream {where} {what} ({exc.label})",
        )
        return reply.with_header("x-aichaos-proxy-error", "upstream_unreachable")


__all__ = ["ProxyApp"]
