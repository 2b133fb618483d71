"""The proxy's upstream client against raw TCP servers that answer exactly as scripted:
framing variants, interim answers, early closes, stale keep-alive connections, timeouts,
slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from aichaos.proxy.forwarding import (
    Forwarder,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
)
from aichaos.proxy.headers import request_headers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    connections: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in connections:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def body_of(response: UpstreamResponse) -> bytes:
    chunks = [chunk async for chunk in response]
    response.release()
    return b"".join(chunks)


async def get(forwarder: Forwarder, base: str, method: str = "POST") -> UpstreamResponse:
    return await forwarder.request(method, base, b"/v1/x", b"a=1", [(b"x-k", b"v")], b"{}")


@pytest.mark.anyio
async def test_framings_interim_answers_and_request_shape() -> None:
    seen: list[bytes] = []
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            seen.append(await read_request(reader))
            writer.write(answer)

    forwarder = Forwarder()
    async with raw_server(handler) as base:
        bodies = [await body_of(await get(forwarder, base)) for _ in answers]
        assert bodies == [b"hello", b"abcde", b""]
        assert forwarder.open_connections == 1  # one kept-alive connection for all three
    first = seen[0].decode()
    assert first.startswith("POST /v1/x?a=1 HTTP/1.1\r\n")
    assert f"host: {base.removeprefix('http://')}" in first and "x-k: v" in first
    assert first.endswith("content-length: 2\r\n\r\n{}")
    await forwarder.aclose()


@pytest.mark.anyio
async def test_close_delimited_body_and_head() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n")
            await reader.read()  # the client closes a HEAD's connection
            return
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    forwarder = Forwarder()
    async with raw_server(handler) as base:
        assert await body_of(await get(forwarder, base)) == b"until the end"
        head = await get(forwarder, base, "HEAD")
        assert head.status == 200 and await body_of(head) == b""
    await forwarder.aclose()


@pytest.mark.anyio
async def test_early_close_is_an_error_before_and_during_the_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if b"mid" in request:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
            await writer.drain()

    forwarder = Forwarder()
    async with raw_server(handler) as base:
        with pytest.raises(UpstreamProtocolError, match="without sending a response"):
            await get(forwarder, base)
        response = await forwarder.request("POST", base, b"/mid", b"", [], b"")
        with pytest.raises(UpstreamProtocolError, match="complete message body"):
            await body_of(response)
        response.release()
    await forwarder.aclose()


@pytest.mark.anyio
async def test_stale_keep_alive_connection_is_retried_once() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        # then the server closes the idle connection, as servers do after their keep-alive

    forwarder = Forwarder()
    async with raw_server(handler) as base:
        assert await body_of(await get(forwarder, base)) == b"ok"
        assert await body_of(await get(forwarder, base)) == b"ok"
    assert served == 2
    await forwarder.aclose()


@pytest.mark.anyio
async def test_unreachable_and_silent_upstreams() -> None:
    forwarder = Forwarder(read_timeout=0.2)
    with pytest.raises(UpstreamConnectError):
        await get(forwarder, "http://127.0.0.1:9")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # says nothing until the client gives up and closes

    async with raw_server(silent) as base:
        with pytest.raises(UpstreamTimeout):
            await get(forwarder, base)
        with anyio.fail_after(30):  # the close completes on the next loop turns
            while forwarder.open_connections:
                await asyncio.sleep(0.01)
    assert forwarder.open_connections == 0
    await forwarder.aclose()


@pytest.mark.anyio
async def test_a_slow_reader_pauses_the_upstream_without_timing_out() -> None:
    size = 8 * 1024 * 1024

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()

    forwarder = Forwarder(read_timeout=0.5)
    async with raw_server(big) as base:
        response = await get(forwarder, base)
        received, pauses = 0, 0
        async for chunk in response:
            received += len(chunk)
            if pauses < 2:
                pauses += 1
                # A slow client: reading pauses for longer than the read timeout (0.5 s),
                # while the upstream is blocked on a full buffer; no timeout fires.
                await asyncio.sleep(0.6)
        response.release()
    assert received == size
    await forwarder.aclose()


def test_request_headers_drop_hop_by_hop_and_the_call_header() -> None:
    raw = [
        (b"authorization", b"Bearer sk"),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"1"),
        (b"host", b"proxy"),
        (b"content-length", b"2"),
        (b"x-aichaos-call", b"c1"),
        (b"expect", b"100-continue"),
        (b"accept-encoding", b"gzip"),
    ]
    assert request_headers(raw) == [(b"authorization", b"Bearer sk"), (b"accept-encoding", b"gzip")]
    assert request_headers(raw, identity=True) == [
        (b"authorization", b"Bearer sk"),
        (b"accept-encoding", b"identity"),
    ]
