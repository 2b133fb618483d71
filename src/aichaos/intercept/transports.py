"""Transports that play each exchange's life (`aichaos.exchange`) inside httpx and httpx2 clients.

The driver decides everything (which fault, what to send, when the client times out);
these classes interpret its actions: sleep, call the client's own transport, hand bytes
to the client, raise the exception the client's library raises for a failed connection.
The sync and async twins share the steps of the life (`_Play.next_step`) and differ only
in how they carry out an action: with or without an await.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio

from aichaos.exchange import actions
from aichaos.intercept.flavors import Flavor
from aichaos.intercept.session import Session
from aichaos.records import error_name
from aichaos.wire.exchange import RequestInfo


def request_info(request: Any, body: bytes) -> RequestInfo:
    """The neutral `RequestInfo` of an httpx/httpx2 `Request` whose whole `body` (bytes) was
    read: method, URL, host, path, query as text, headers with lower-case names."""
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


class _Play:
    """One exchange being played for a client of `flavor`: the state both halves share
    (the response head in `handle_request`, the body as the client reads it).

    `next_step` runs the life as far as it goes without I/O, and is what the sync and async
    interpreters share. Each step is an action: `actions.StartAnswer` (for the transport),
    `actions.SendBytes` (its bytes, never empty, go to the client) or one to carry out, whose result
    the interpreter puts in `result` before it asks for the next step. The two differ only
    in how they carry an action out.
    """

    def __init__(self, transport: InterceptTransport, request: Any, body: bytes) -> None:
        self.transport, self.request = transport, request
        self.flavor = transport.flavor
        info = request_info(request, body)
        self.exchange = transport.session.begin(transport.backend, info)
        self.life = transport.session.life(self.exchange, self.flavor.read_timeout(request))
        self.upstream: Any = None  # the client's own transport's response, if called
        self.result: object = None

    def next_step(self) -> actions.Action | None:
        """The next action to carry out (None: the life finished); a plain method, not a
        generator, so that a played exchange leaves no reference cycle for the GC."""
        result, self.result = self.result, None
        life = self.life
        while True:
            action = life.send(result)
            if action is actions.FINISH:
                return None
            if not isinstance(action, actions.SendBytes) or action.data:
                return action
            result = None

    def failing(self, exc: Exception) -> None:
        """An exception raised by the interpreter's own I/O (the client's transport) is the
        attempt's failure, unless the life already recorded its ending; the caller re-raises."""
        if not self.life.ended:
            kind: actions.FailKind = (
                "timeout" if isinstance(exc, self.flavor.TimeoutException) else "reset"
            )
            self.life.failed(kind, error_name(exc))

    def exception(self, fail: actions.Fail) -> Exception:
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

    def upstream_answer(self, response: Any) -> actions.UpstreamAnswer:
        self.upstream = response
        return actions.UpstreamAnswer(response.status_code, list(response.headers.multi_items()))

    def response(self, head: actions.StartAnswer, body: Any) -> Any:
        return self.flavor.Response(head.status, headers=head.headers, stream=body)

    def whole_response(self) -> Any:
        """The response when the life has the whole answer at once (the mock's non-stream
        answer): the library's own byte stream, no life left to drive; else None."""
        try:
            whole = self.life.at_once()
        except Exception as exc:
            self.failing(exc)
            raise
        if whole is None:
            return None
        head, data = whole
        # Plain bytes: the client's response lives until the GC frees it (it is a cycle),
        # and the mock's answer would keep the value it was encoded from that long.
        content = data if type(data) is bytes else bytes(data)
        stream = self.flavor.ByteStream(content)
        return self.flavor.Response(head.status, headers=head.headers, stream=stream)

    def upstream_request(self) -> Any:
        """The request to send to a real upstream (the original when the URL does not change)."""
        request = self.request
        url = self.exchange.upstream_url()
        if url == str(request.url):
            return request
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
        return self.flavor.Request(
            request.method,
            url,
            headers=headers,
            content=self.exchange.info.body,
            extensions=request.extensions,
        )

    def end(self, error: str | None) -> Any:
        """Record that the client stopped reading (unless the life ended); the upstream
        response to close, if any."""
        if not self.life.ended:
            self.life.abandoned(error)
        upstream, self.upstream = self.upstream, None
        return upstream

    def close_reason(self) -> str | None:
        return None if self.life.answer_complete else "closed early"


class ShapedStream:
    """A sync response body: the life's bytes, with its pauses and failures played."""

    def __init__(self, play: _Play) -> None:
        self.play = play
        self._upstream_parts: Iterator[bytes] | None = None

    def head(self) -> actions.StartAnswer:
        """Play the life up to the answer's head (a failure on the way closes the body)."""
        play = self.play
        try:
            while (step := play.next_step()) is not None:
                if isinstance(step, actions.StartAnswer):
                    return step
                play.result = self.do(step)
        except Exception as exc:
            play.failing(exc)
            self.close()
            raise
        raise AssertionError("a life starts its answer before it finishes")

    def __iter__(self) -> Iterator[bytes]:
        # While the client reads: a failure is recorded, and the life ends when it stops.
        play = self.play
        try:
            while (step := play.next_step()) is not None:
                if isinstance(step, actions.SendBytes):
                    yield step.data
                else:
                    play.result = self.do(step)
        except Exception as exc:
            play.failing(exc)
            raise
        finally:
            self._end("incomplete")

    def do(self, action: actions.Action) -> object:
        """Carry out one action other than sending bytes; its result for the life."""
        if isinstance(action, actions.Wait):
            time.sleep(action.seconds)
            return None
        if action is actions.READ_UPSTREAM:
            if self._upstream_parts is None:
                self._upstream_parts = iter(self.play.upstream.stream)
            return next(self._upstream_parts, None)
        if action is actions.FETCH_UPSTREAM:
            upstream = self.play.transport.inner.handle_request(self.play.upstream_request())
            return self.play.upstream_answer(upstream)
        assert isinstance(action, actions.Fail)
        raise self.play.exception(action)

    def _end(self, error: str | None) -> None:
        upstream = self.play.end(error)
        if upstream is not None:
            upstream.close()

    def close(self) -> None:
        self._end(self.play.close_reason())


class AsyncShapedStream:
    """The async twin of `ShapedStream`: the same steps, actions carried out with awaits."""

    def __init__(self, play: _Play) -> None:
        self.play = play
        self._upstream_parts: AsyncIterator[bytes] | None = None

    async def head(self) -> actions.StartAnswer:
        play = self.play
        try:
            while (step := play.next_step()) is not None:
                if isinstance(step, actions.StartAnswer):
                    return step
                play.result = await self.do(step)
        except Exception as exc:
            play.failing(exc)
            await self.aclose()
            raise
        raise AssertionError("a life starts its answer before it finishes")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # No context manager around the yield: when the client stops reading early (the
        # SDK after the final event), the loop closes this generator and a nested one
        # ("generator didn't stop after athrow()"); a plain try/finally closes cleanly.
        play = self.play
        try:
            while (step := play.next_step()) is not None:
                if isinstance(step, actions.SendBytes):
                    yield step.data
                else:
                    play.result = await self.do(step)
        except Exception as exc:
            play.failing(exc)
            raise
        finally:
            await self._end("incomplete")

    async def do(self, action: actions.Action) -> object:
        """Carry out one action other than sending bytes; its result for the life."""
        if isinstance(action, actions.Wait):
            await anyio.sleep(action.seconds)
            return None
        if action is actions.READ_UPSTREAM:
            if self._upstream_parts is None:
                self._upstream_parts = _aiter(self.play.upstream.stream)
            return await anext(self._upstream_parts, None)
        if action is actions.FETCH_UPSTREAM:
            inner = self.play.transport.inner
            upstream = await inner.handle_async_request(self.play.upstream_request())
            return self.play.upstream_answer(upstream)
        assert isinstance(action, actions.Fail)
        raise self.play.exception(action)

    async def _end(self, error: str | None) -> None:
        upstream = self.play.end(error)
        if upstream is not None:
            await upstream.aclose()

    async def aclose(self) -> None:
        await self._end(self.play.close_reason())


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
        whole = play.whole_response()
        if whole is not None:
            return whole
        body = _stream_classes(self.flavor)[0](play)
        return play.response(body.head(), body)

    def close(self) -> None:
        """The client closes its own transport; the wrapper owns nothing."""


class AsyncInterceptTransport(InterceptTransport):
    """Wraps an async client's own transport for one claimed backend."""

    async def handle_async_request(self, request: Any) -> Any:
        play = _Play(self, request, await request.aread())
        whole = play.whole_response()
        if whole is not None:
            return whole
        body = _stream_classes(self.flavor)[1](play)
        return play.response(await body.head(), body)

    async def aclose(self) -> None:
        """The client closes its own transport; the wrapper owns nothing."""


__all__ = ["AsyncInterceptTransport", "InterceptTransport", "request_info"]
