"""Transports that play each exchange's life (`aichaos.exchange`) inside httpx and httpx2 clients.

The driver decides everything (which fault, what to send, when the client times out);
these classes interpret its actions: sleep, call the client's own transport, hand bytes
to the client, raise the exception the client's library raises for a failed connection.
The sync and async twins differ only in how they wait and read.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio

from aichaos.exchange.driver import (
    FETCH_UPSTREAM,
    FINISH,
    READ_UPSTREAM,
    Action,
    Fail,
    FailKind,
    SendBytes,
    StartAnswer,
    UpstreamAnswer,
    Wait,
)
from aichaos.intercept.flavors import Flavor
from aichaos.intercept.session import Exchange, Session
from aichaos.records import error_name
from aichaos.wire.exchange import RequestInfo


def request_info(request: Any, body: bytes) -> RequestInfo:
    url = request.url
    query = url.query
    return RequestInfo(
        method=request.method,
        url=str(url),
        host=url.host,
        path=url.path,
        query=query.decode() if isinstance(query, bytes) else str(query),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )


def _upstream_request(flavor: Flavor, exchange: Exchange, request: Any) -> Any:
    """The request to send to a real upstream (the original when the URL does not change)."""
    url = exchange.upstream_url()
    if url == str(request.url):
        return request
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
    return flavor.Request(
        request.method,
        url,
        headers=headers,
        content=exchange.info.body,
        extensions=request.extensions,
    )


class _Play:
    """One exchange being played for a client of `flavor`: the state both halves share
    (the response head in `handle_request`, the body as the client reads it)."""

    def __init__(self, transport: InterceptTransport, request: Any, body: bytes) -> None:
        self.transport, self.request = transport, request
        self.flavor = transport.flavor
        info = request_info(request, body)
        self.exchange = transport.session.begin(transport.backend, info)
        self.life = transport.session.life(self.exchange, self.flavor.read_timeout(request))
        self.upstream: Any = None  # the client's own transport's response, if called

    def exception(self, fail: Fail) -> Exception:
        """The exception the client's library raises for `fail`; the life records it."""
        flavor, request = self.flavor, self.request
        exc: Exception
        if fail.kind == "timeout":
            exc = flavor.ReadTimeout("The read operation timed out", request=request)
        elif fail.kind == "refused":
            exc = flavor.ConnectError(fail.message, request=request)
        else:
            exc = flavor.RemoteProtocolError(fail.message, request=request)
        self.life.failed(fail.kind, error_name(exc))
        return exc

    def failed(self, exc: Exception) -> None:
        """Something raised on the way (the client's own transport): record it as a failure."""
        kind: FailKind = "timeout" if isinstance(exc, self.flavor.TimeoutException) else "reset"
        self.life.failed(kind, error_name(exc))

    def upstream_answer(self, response: Any) -> UpstreamAnswer:
        self.upstream = response
        return UpstreamAnswer(response.status_code, list(response.headers.multi_items()))

    def response(self, head: StartAnswer, body: Any) -> Any:
        return self.flavor.Response(head.status, headers=head.headers, stream=body)


class ShapedStream:
    """A sync response body: the life's bytes, with its pauses and failures played."""

    def __init__(self, play: _Play) -> None:
        self.play = play
        self._upstream_parts: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        life = self.play.life
        try:
            action = life.send(None)
            while action is not FINISH:
                if isinstance(action, SendBytes):
                    if action.data:
                        yield action.data
                    action = life.send(None)
                else:
                    action = life.send(self.do(action))
        except Exception as exc:
            if not life.ended:
                self.play.failed(exc)
            raise
        finally:
            self._end("incomplete")

    def do(self, action: Action) -> object:
        """Carry out one action other than sending bytes; its result for the life."""
        if isinstance(action, Wait):
            time.sleep(action.seconds)
            return None
        if action is READ_UPSTREAM:
            if self._upstream_parts is None:
                self._upstream_parts = iter(self.play.upstream.stream)
            return next(self._upstream_parts, None)
        if action is FETCH_UPSTREAM:
            play = self.play
            outgoing = _upstream_request(play.flavor, play.exchange, play.request)
            return play.upstream_answer(play.transport.inner.handle_request(outgoing))
        assert isinstance(action, Fail)
        raise self.play.exception(action)

    def _end(self, error: str | None) -> None:
        play = self.play
        if not play.life.ended:
            play.life.abandoned(error)
        upstream, play.upstream = play.upstream, None
        if upstream is not None:
            upstream.close()

    def close(self) -> None:
        self._end(None if self.play.life.answer_complete else "closed early")


class AsyncShapedStream:
    """The async twin of `ShapedStream`."""

    def __init__(self, play: _Play) -> None:
        self.play = play
        self._upstream_parts: AsyncIterator[bytes] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        life = self.play.life
        try:
            action = life.send(None)
            while action is not FINISH:
                if isinstance(action, SendBytes):
                    if action.data:
                        yield action.data
                    action = life.send(None)
                else:
                    action = life.send(await self.do(action))
        except Exception as exc:
            if not life.ended:
                self.play.failed(exc)
            raise
        finally:
            await self._end("incomplete")

    async def do(self, action: Action) -> object:
        """Carry out one action other than sending bytes; its result for the life."""
        if isinstance(action, Wait):
            await anyio.sleep(action.seconds)
            return None
        if action is READ_UPSTREAM:
            if self._upstream_parts is None:
                self._upstream_parts = _aiter(self.play.upstream.stream)
            return await anext(self._upstream_parts, None)
        if action is FETCH_UPSTREAM:
            play = self.play
            outgoing = _upstream_request(play.flavor, play.exchange, play.request)
            return play.upstream_answer(await play.transport.inner.handle_async_request(outgoing))
        assert isinstance(action, Fail)
        raise self.play.exception(action)

    async def _end(self, error: str | None) -> None:
        play = self.play
        if not play.life.ended:
            play.life.abandoned(error)
        upstream, play.upstream = play.upstream, None
        if upstream is not None:
            await upstream.aclose()

    async def aclose(self) -> None:
        await self._end(None if self.play.life.answer_complete else "closed early")


async def _aiter(parts: Any) -> AsyncIterator[bytes]:
    if hasattr(parts, "__aiter__"):
        async for part in parts:
            yield part
    else:
        for part in parts:
            yield part


_STREAM_CLASSES: dict[str, tuple[type[ShapedStream], type[AsyncShapedStream]]] = {}


def _stream_classes(flavor: Flavor) -> tuple[type[ShapedStream], type[AsyncShapedStream]]:
    """Body classes that also subclass the library's stream bases (clients check for them)."""
    cached = _STREAM_CLASSES.get(flavor.name)
    if cached is None:
        sync_cls = type("InterceptedStream", (ShapedStream, flavor.SyncByteStream), {})
        async_cls = type("AsyncInterceptedStream", (AsyncShapedStream, flavor.AsyncByteStream), {})
        cached = _STREAM_CLASSES[flavor.name] = (sync_cls, async_cls)
    return cached


class InterceptTransport:
    """Wraps a sync client's own transport for one claimed backend."""

    def __init__(self, session: Session, backend: str, inner: Any, flavor: Flavor) -> None:
        self.session, self.backend, self.inner, self.flavor = session, backend, inner, flavor

    def handle_request(self, request: Any) -> Any:
        play = _Play(self, request, request.read())
        body = _stream_classes(self.flavor)[0](play)
        try:
            action = play.life.send(None)
            while not isinstance(action, StartAnswer):  # up to the response head
                action = play.life.send(body.do(action))
        except Exception as exc:
            if not play.life.ended:
                play.failed(exc)
            body.close()
            raise
        return play.response(action, body)

    def close(self) -> None:
        """The client closes its own transport; the wrapper owns nothing."""


class AsyncInterceptTransport(InterceptTransport):
    """Wraps an async client's own transport for one claimed backend."""

    async def handle_async_request(self, request: Any) -> Any:
        play = _Play(self, request, await request.aread())
        body = _stream_classes(self.flavor)[1](play)
        try:
            action = play.life.send(None)
            while not isinstance(action, StartAnswer):  # up to the response head
                action = play.life.send(await body.do(action))
        except Exception as exc:
            if not play.life.ended:
                play.failed(exc)
            await body.aclose()
            raise
        return play.response(action, body)

    async def aclose(self) -> None:
        """The client closes its own transport; the wrapper owns nothing."""


__all__ = ["AsyncInterceptTransport", "InterceptTransport", "request_info"]
