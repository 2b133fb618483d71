"""The chaos proxy as a plain ASGI application (no framework).

`/<backend>/<rest>` goes to that backend's upstream + `<rest>`: the embedded mock
or a real URL. Each request runs through the same `Session` as in-process
injection (`begin` -> plan -> prelude -> answer -> `ResponseShaper` -> `finish`);
this module only does the I/O, mirroring `intercept.transports` for ASGI:

* the plan's prelude (delay, hang, connection failure) is played before any answer;
* a terminal fault's reply, the mock, or the upstream answers;
* the answer goes through the shaper chunk by chunk and straight to the client
  (no buffering unless a body edit needs the whole body);
* pauses and failures are decided by `PartRunner`; a failure closes the client's
  TCP connection for real (see `connections`), a hang holds it until the client
  gives up;
* a client that disconnects cancels the exchange, and with it the upstream request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from aichaos.faults.shaping import ResponseShaper, TokenBytes
from aichaos.intercept.session import Exchange, PartRunner, Session, prelude
from aichaos.providers import closest_provider, get_provider
from aichaos.proxy.admin import PREFIX, AdminAPI
from aichaos.proxy.connections import ConnectionRegistry
from aichaos.proxy.forwarding import Forwarder, UpstreamError, UpstreamResponse, UpstreamTimeout
from aichaos.proxy.headers import (
    CALL_HEADER,
    end_to_end,
    request_headers,
    response_headers,
    upstream_url,
)
from aichaos.proxy.stats import ProxyStats
from aichaos.records import call_scope
from aichaos.wire.asgi import Receive, Scope, Send, read_request, send_reply
from aichaos.wire.exchange import Abort, Hang, Part, Pause, Reply, RequestInfo

Source = Iterable[Part] | AsyncIterable[bytes]


# --- how the proxy fails a connection (PartRunner names the failure) ------------
class _Failure(Exception):
    """The proxy must fail the client's connection; `label` goes into the attempt record."""

    label: ClassVar[str] = "connection_reset"

    def __init__(self, message: str = "", *, request: object = None) -> None:
        super().__init__(message)


class _Reset(_Failure):
    label = "connection_reset"


class _Refused(_Failure):
    label = "connection_refused"


class _TimedOut(_Failure):
    label = "timeout"


class _ClientSide:
    """What `PartRunner` asks about the client: over a socket the client enforces its own
    read timeout (so none here), and each failure it names is a way to end the connection."""

    ReadTimeout = _TimedOut
    ConnectError = _Refused
    RemoteProtocolError = _Reset

    @staticmethod
    def read_timeout(request: object) -> float | None:
        return None


_CLIENT_SIDE = _ClientSide()
_CALL = CALL_HEADER.decode()


class _Downstream:
    """The client's side of one exchange: the answer, its disconnect, dropping its connection."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, connections: ConnectionRegistry
    ) -> None:
        self.scope, self.receive, self.send, self.connections = scope, receive, send, connections
        self.complete = False  # the whole answer went out
        self.gone = False  # the client disconnected (or the proxy dropped it)
        self.dropped = False  # the proxy dropped the connection on purpose
        self.holding = False  # a hang is in progress: a disconnect now is the client timing out
        self.unsupported_drop = False  # not served by serve_proxy: let the server close it

    async def watch(self, exchange: asyncio.Task[Any]) -> None:
        """Cancel the exchange (and its upstream request) when the client goes away."""
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if not self.complete:
            self.gone = True
            exchange.cancel()

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self) -> None:
        self.complete = True
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def drop(self) -> None:
        """Close the client's TCP connection now, with whatever was sent so far.

        A graceful close (FIN after the bytes already written), as when the peer
        process dies: before any response the client sees "server disconnected
        without sending a response", mid-body an incomplete body. Returns only in
        the unsupported case; otherwise the disconnect cancels the exchange.
        """
        self.dropped = True
        transport = self.connections.transport_for(self.scope.get("client"))
        if transport is None:
            self.unsupported_drop = True
            return
        transport.close()
        await asyncio.sleep(1.0)  # the watcher sees the disconnect and cancels us
        transport.abort()  # the client stopped reading: close() could wait forever to flush
        await asyncio.sleep(1.0)


class _Run:
    """State of one exchange as it progresses, read when it ends however it ends."""

    def __init__(self, exchange: Exchange, raw_path: bytes, query: bytes) -> None:
        self.exchange, self.raw_path, self.query = exchange, raw_path, query
        self.shaper: ResponseShaper | None = None
        self.error: str | None = "incomplete"
        self.response: UpstreamResponse | None = None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _info_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], str | None]:
    headers: dict[str, str] = {}
    call_id = None
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == _CALL:
            call_id = value
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers, call_id


class ProxyApp:
    """ASGI app of the chaos proxy for one `Session`.

    `connections` must be wired into the server (`serve_proxy` does) for
    connection-level faults to close the client's socket; `stats` counts what
    passes; `admin` serves `/_aichaos/...` unless disabled.
    """

    def __init__(
        self,
        session: Session,
        *,
        admin: bool = True,
        admin_token: str | None = None,
        forwarder: Forwarder | None = None,
        stats: ProxyStats | None = None,
    ) -> None:
        self.session = session
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
            if path == PREFIX or path.startswith(PREFIX + "/"):
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
            message = f"aichaos proxy: no backend for {info.path}; route as /<backend>/<path>"
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
        body = await _read_body(receive)
        if body is None:
            return
        spec = self.session.backends[backend]
        raw_headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        headers, call_id = _info_headers(raw_headers)
        query: bytes = scope.get("query_string", b"")
        base = "http://mock" if spec.is_mock else spec.upstream
        info = RequestInfo(
            method=scope["method"],
            url=upstream_url(base, raw_rest, query),
            host=self._host(backend, spec.upstream),
            path=rest,
            query=query.decode("latin-1"),
            headers=headers,
            body=body,
        )
        if call_id is None:
            exchange = self.session.begin(backend, info)
        else:
            with call_scope(call_id):
                exchange = self.session.begin(backend, info)
        self.stats.opened(backend)
        down = _Downstream(scope, receive, send, self.connections)
        run = _Run(exchange, raw_rest, query)
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.ensure_future(down.watch(task))
        try:
            await self._answer(run, down, raw_headers)
        except asyncio.CancelledError:
            if not down.gone:
                raise  # cancelled from outside (server shutdown): cleanup below, then stop
            if hasattr(task, "uncancel"):
                task.uncancel()  # our own cancellation: the client left, the exchange is over
        finally:
            watcher.cancel()
            if run.response is not None:
                run.response.release()  # unread: the upstream connection is closed
            error = run.error
            if down.gone and not down.dropped:
                error = "timeout" if down.holding else "client_disconnected"
            self.session.finish(exchange, run.shaper, error)
            self.stats.closed(exchange.attempt)
        if down.unsupported_drop:
            raise ConnectionAbortedError("aichaos proxy: connection dropped by a fault")

    def _host(self, backend: str, upstream: str) -> str:
        host = self._hosts.get(backend)
        if host is None:
            host = self._hosts[backend] = urlsplit(upstream).hostname or upstream
        return host

    async def _answer(self, run: _Run, down: _Downstream, raw_headers: Any) -> None:
        exchange = run.exchange
        plan = exchange.plan
        runner = PartRunner(_CLIENT_SIDE, None)
        try:
            for step in prelude(plan):
                await self._play(step, runner, down)
            source: Source
            if plan.reply is not None:
                status, headers, source = plan.reply.status, plan.reply.headers, plan.reply.parts()
            elif exchange.spec.is_mock:
                delay, status, headers, source = self.session.mock_answer(exchange)
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                status, headers, source = await self._forward(run, raw_headers)
            self.session.headers_received(exchange, status)
            shaper = run.shaper = ResponseShaper(plan, status, headers)
            if shaper.buffered:
                source = shaper.shape_buffered(await _read_all(source))
            response = run.response
            if response is not None and not plan.edits_response:
                out = end_to_end(response.headers)  # as received
                if response.complete and not response.head_only:
                    await self._whole(response, out, shaper, down, exchange)
                    run.error = None
                    return
            else:
                out = response_headers(shaper.headers)
            await down.start(shaper.status, out)
            if isinstance(source, AsyncIterable):
                async for chunk in source:
                    await self._emit_all(shaper.feed(chunk), runner, down, exchange)
                    if shaper.ended:
                        break
            else:
                for part in source:
                    parts: list[Part] = shaper.feed(part) if isinstance(part, bytes) else [part]
                    await self._emit_all(parts, runner, down, exchange)
                    if shaper.ended:
                        break
            await self._emit_all(shaper.end(), runner, down, exchange)
            await down.end()
            run.error = None
        except _Failure as failure:
            run.error = failure.label
            await down.drop()
        except UpstreamError as exc:  # the upstream failed mid-answer: so does the client
            run.error = f"upstream_{exc.label}"
            await down.drop()

    async def _whole(
        self,
        response: UpstreamResponse,
        headers: list[tuple[bytes, bytes]],
        shaper: ResponseShaper,
        down: _Downstream,
        exchange: Exchange,
    ) -> None:
        """An answer that arrived whole (most non-streamed ones) goes out in one body write.

        Its length is known, so `content-length` replaces chunked framing (hop-by-hop):
        the client gets the same bytes with one write and one packet fewer.
        """
        chunks = [part for chunk in response.take_all() for part in shaper.feed(chunk)]
        chunks += shaper.end()
        body = b"".join(chunks)  # type: ignore[arg-type]  # no edits: only bytes
        if any(isinstance(chunk, TokenBytes) for chunk in chunks):
            self.session.token_delivered(exchange)
        if not any(name == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        await down.start(shaper.status, headers)
        down.complete = True
        await down.send({"type": "http.response.body", "body": body, "more_body": False})

    async def _emit_all(
        self, parts: list[Part], runner: PartRunner, down: _Downstream, exchange: Exchange
    ) -> None:
        for part in parts:
            if isinstance(part, bytes):
                if part:
                    runner.data()
                    if isinstance(part, TokenBytes):
                        self.session.token_delivered(exchange)
                    await down.body(part)
            else:
                await self._play(part, runner, down)

    async def _play(
        self, part: Pause | Hang | Abort, runner: PartRunner, down: _Downstream
    ) -> None:
        seconds, failure = runner.step(part)
        if seconds > 0:
            down.holding = isinstance(part, Hang)
            await asyncio.sleep(seconds)
            down.holding = False
        if failure is not None:
            raise failure

    async def _forward(
        self, run: _Run, raw_headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[str, str]], Source]:
        exchange = run.exchange
        info = exchange.info
        headers = request_headers(raw_headers, identity=exchange.plan.edits_response)
        try:
            response = await self.forwarder.request(
                info.method, exchange.spec.upstream, run.raw_path, run.query, headers, info.body
            )
        except UpstreamError as exc:
            self.stats.upstream_errors += 1
            reply = self._upstream_down(exchange, exc)
            return reply.status, reply.headers, reply.parts()
        run.response = response
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
        return response.status, pairs, response

    @staticmethod
    def _upstream_down(exchange: Exchange, exc: UpstreamError) -> Reply:
        """The provider's own 502 (504 on a timeout) for an upstream that cannot be reached."""
        origin = urlsplit(exchange.spec.upstream)
        where = f"{origin.scheme}://{origin.netloc}"  # never the path or query: keys hide there
        timed_out = isinstance(exc, UpstreamTimeout)
        status = 504 if timed_out else 502
        what = "did not answer in time" if timed_out else "cannot be reached"
        reply = get_provider(exchange.spec.provider).error(
            exchange.info,
            status,
            message=f"aichaos proxy: upstream {where} {what} ({exc.label})",
        )
        return reply.with_header("x-aichaos-proxy-error", "upstream_unreachable")


async def _read_all(source: Source) -> bytes:
    if isinstance(source, AsyncIterable):
        return b"".join([chunk async for chunk in source])
    return b"".join(p for p in source if isinstance(p, bytes))


__all__ = ["ProxyApp"]
