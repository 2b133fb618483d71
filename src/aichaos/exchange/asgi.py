"""Playing an `ExchangeLife` over ASGI for a server that answers itself (the mock).

The status line and headers are sent lazily, right before the first body bytes: a pause
or hang before any bytes therefore delays the headers too (a slow or hung server), and a
failure before any bytes drops the connection without a response (most servers, uvicorn
included, then answer 500 themselves if they still can). A failure raises
`ConnectionAbortedError`, so the server drops the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aichaos.exchange.actions import FINISH, Fail, SendBytes, StartAnswer, Wait
from aichaos.exchange.driver import ExchangeLife
from aichaos.wire.asgi import Message, Receive, Send
from aichaos.wire.exchange import Reply


def send_reply(
    reply: Reply, send: Send, *, header_delay: float = 0.0, receive: Receive | None = None
) -> Coroutine[Any, Any, None]:
    """Send `reply` through ASGI `send`, each bytes part as its own chunk (a body known
    whole goes out in one write, with its `content-length`).

    With `receive`, a client disconnect during a wait cancels the reply (so a hang never
    outlives its client); the disconnect is only watched once there is something to wait for.
    """
    # `play`'s own coroutine, awaited by the caller: no coroutine of our own per answer
    return play(ExchangeLife.of_reply(reply, header_delay), send, receive)


async def play(life: ExchangeLife, send: Send, receive: Receive | None = None) -> None:
    """Carry out `life`'s actions over ASGI (see the module docstring)."""
    whole = life.at_once()
    if whole is not None:  # the common answer: one body known now, nothing to wait for
        await send(_start(whole[0]))
        await send({"type": "http.response.body", "body": whole[1]})
        return
    head: StartAnswer | None = None
    watcher: _Watcher | None = None
    try:
        last = False
        action = life.send(None)
        while action is not FINISH:
            if isinstance(action, SendBytes):
                if head is not None:
                    await send(_start(head))
                    head = None
                last = action.last
                await send(
                    {"type": "http.response.body", "body": action.data, "more_body": not last}
                )
            elif isinstance(action, Wait):
                if watcher is None and receive is not None:
                    watcher = _Watcher(receive)
                await asyncio.sleep(action.seconds)
            elif isinstance(action, StartAnswer):
                head = action
            elif isinstance(action, Fail):
                raise ConnectionAbortedError(action.message)
            action = life.send(None)
        if head is not None:
            await send(_start(head))
        if not last:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if watcher is None or not watcher.gone:
            raise  # cancelled from outside
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()  # our own cancellation: the client left, the reply is over
    finally:
        if watcher is not None:
            watcher.task.cancel()


def _start(head: StartAnswer) -> Message:
    """The `http.response.start` message of `head` (its length as `content-length`)."""
    headers: list[tuple[bytes, bytes]] = []
    length = head.length
    for pair in head.headers:
        raw = _ENCODED.get(pair)
        if raw is None:
            raw = (pair[0].lower().encode("latin-1"), pair[1].encode("latin-1"))
            if len(_ENCODED) < _ENCODED_MOST:
                _ENCODED[pair] = raw
        if raw[0] == b"content-length":
            length = None
        headers.append(raw)
    if length is not None:
        headers.append((b"content-length", b"%d" % length))
    return {"type": "http.response.start", "status": head.status, "headers": headers}


_ENCODED: dict[tuple[str, str], tuple[bytes, bytes]] = {}
"""Headers as ASGI sends them, by (name, value): a provider's fixed headers are encoded once
(a third of the cost of sending a head). The first `_ENCODED_MOST` pairs seen are kept; the
fixed ones come with the first answers, per-answer ids fill the rest and then no more."""
_ENCODED_MOST = 1024


class _Watcher:
    """Cancels the current task (the reply) when the client disconnects."""

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self._reply = asyncio.current_task()
        self.task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive()).get("type") != "http.disconnect":
            pass
        if self._reply is not None:
            self.gone = True
            self._reply.cancel()
