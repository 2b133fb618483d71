"""Transports that carry out the fault engine's plans inside httpx and httpx2 clients.

The sync and async classes mirror each other; every decision (which fault,
what to send, when the client times out) is made by the shared session,
engine, shaper and part runner. These classes only do the I/O.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio

from aichaos.faults.shaping import ResponseShaper, TokenBytes
from aichaos.intercept.flavors import Flavor
from aichaos.intercept.session import Exchange, PartRunner, Session, prelude
from aichaos.wire.exchange import Part, Pause, RequestInfo


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


def error_name(exc: BaseException) -> str:
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"


class _Body:
    """State shared by the sync and async response bodies."""

    def __init__(
        self,
        session: Session,
        exchange: Exchange,
        runner: PartRunner,
        shaper: ResponseShaper,
        upstream: Any,
        prepared: list[Part] | None,
        closer: Callable[[], Any] | None,
    ) -> None:
        self.session, self.exchange, self.runner = session, exchange, runner
        self.shaper, self.upstream, self.prepared, self.closer = shaper, upstream, prepared, closer
        self.finished = False

    def deliver(self, part: bytes) -> bytes:
        self.runner.data()
        if isinstance(part, TokenBytes):
            self.session.token_delivered(self.exchange)
        return bytes(part)

    def record(self, error: str | None) -> bool:
        """Record the end once; True the first time (then the upstream must be closed)."""
        if self.finished:
            return False
        self.finished = True
        self.session.finish(self.exchange, self.shaper, error)
        return self.closer is not None


class ShapedStream(_Body):
    """A sync response body: upstream parts through the shaper, with pauses and failures played."""

    def __iter__(self) -> Iterator[bytes]:
        error: str | None = "incomplete"
        try:
            for part in self._parts():
                if isinstance(part, bytes):
                    if part:
                        yield self.deliver(part)
                    continue
                seconds, exc = self.runner.step(part)
                time.sleep(seconds)
                if exc is not None:
                    raise exc
            error = None
        except Exception as exc:
            error = error_name(exc)
            raise
        finally:
            self._end(error)

    def _parts(self) -> Iterator[Part]:
        if self.prepared is not None:
            yield from self.prepared
            return
        for part in self.upstream:
            yield from (self.shaper.feed(part) if isinstance(part, bytes) else [part])
            if self.shaper.ended:
                return
        yield from self.shaper.end()

    def _end(self, error: str | None) -> None:
        if self.record(error) and self.closer is not None:
            self.closer()

    def close(self) -> None:
        self._end(None if self.shaper.meter.complete else "closed early")


class AsyncShapedStream(_Body):
    """The async twin of `ShapedStream`."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        error: str | None = "incomplete"
        try:
            async for part in self._parts():
                if isinstance(part, bytes):
                    if part:
                        yield self.deliver(part)
                    continue
                seconds, exc = self.runner.step(part)
                await anyio.sleep(seconds)
                if exc is not None:
                    raise exc
            error = None
        except Exception as exc:
            error = error_name(exc)
            raise
        finally:
            await self._end(error)

    async def _parts(self) -> AsyncIterator[Part]:
        if self.prepared is not None:
            for part in self.prepared:
                yield part
            return
        async for part in _aiter(self.upstream):
            for shaped in self.shaper.feed(part) if isinstance(part, bytes) else [part]:
                yield shaped
            if self.shaper.ended:
                return
        for part in self.shaper.end():
            yield part

    async def _end(self, error: str | None) -> None:
        if self.record(error) and self.closer is not None:
            await self.closer()

    async def aclose(self) -> None:
        await self._end(None if self.shaper.meter.complete else "closed early")


async def _aiter(parts: Any) -> AsyncIterator[Part]:
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
        exchange = self.session.begin(self.backend, request_info(request, request.read()))
        runner = PartRunner(self.flavor, request)
        closer = None
        try:
            for step in prelude(exchange.plan):
                seconds, exc = runner.step(step)
                time.sleep(seconds)
                if exc is not None:
                    raise exc
            if exchange.plan.reply is not None:
                reply = exchange.plan.reply
                status, headers, upstream = reply.status, reply.headers, reply.parts()
            elif exchange.spec.is_mock:
                delay, status, headers, upstream = self.session.mock_answer(exchange)
                time.sleep(delay)
            else:
                response = self.inner.handle_request(
                    _upstream_request(self.flavor, exchange, request)
                )
                status, headers = response.status_code, list(response.headers.multi_items())
                upstream, closer = response.stream, response.close
        except Exception as exc:
            self.session.finish(exchange, None, error_name(exc))
            raise
        self.session.headers_received(exchange, status)
        shaper = ResponseShaper(exchange.plan, status, headers)
        prepared = None
        if shaper.buffered:
            prepared = shaper.shape_buffered(b"".join(p for p in upstream if isinstance(p, bytes)))
        body_cls = _stream_classes(self.flavor)[0]
        body = body_cls(self.session, exchange, runner, shaper, upstream, prepared, closer)
        return self.flavor.Response(shaper.status, headers=shaper.headers, stream=body)

    def close(self) -> None:
        """The client closes its own transport; the wrapper owns nothing."""


class AsyncInterceptTransport(InterceptTransport):
    """Wraps an async client's own transport for one claimed backend."""

    async def handle_async_request(self, request: Any) -> Any:
        exchange = self.session.begin(self.backend, request_info(request, await request.aread()))
        runner = PartRunner(self.flavor, request)
        closer = None
        try:
            for step in prelude(exchange.plan):
                seconds, exc = runner.step(step)
                await anyio.sleep(seconds)
                if exc is not None:
                    raise exc
            if exchange.plan.reply is not None:
                reply = exchange.plan.reply
                status, headers, upstream = reply.status, reply.headers, reply.parts()
            elif exchange.spec.is_mock:
                delay, status, headers, upstream = self.session.mock_answer(exchange)
                await anyio.sleep(delay)
            else:
                outgoing = _upstream_request(self.flavor, exchange, request)
                response = await self.inner.handle_async_request(outgoing)
                status, headers = response.status_code, list(response.headers.multi_items())
                upstream, closer = response.stream, response.aclose
        except Exception as exc:
            self.session.finish(exchange, None, error_name(exc))
            raise
        self.session.headers_received(exchange, status)
        shaper = ResponseShaper(exchange.plan, status, headers)
        prepared = None
        if shaper.buffered:
            chunks = [p async for p in _aiter(upstream) if isinstance(p, bytes)]
            prepared = shaper.shape_buffered(b"".join(chunks))
        body_cls = _stream_classes(self.flavor)[1]
        body = body_cls(self.session, exchange, runner, shaper, upstream, prepared, closer)
        return self.flavor.Response(shaper.status, headers=shaper.headers, stream=body)

    async def aclose(self) -> None:
        """The client closes its own transport; the wrapper owns nothing."""


__all__ = ["AsyncInterceptTransport", "InterceptTransport", "Pause", "request_info"]
