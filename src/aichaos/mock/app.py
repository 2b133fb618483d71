"""The mock backend as a plain ASGI application (no framework)."""

from __future__ import annotations

from typing import Literal

from aichaos.cassette import ReplaySource
from aichaos.exchange.asgi import send_reply
from aichaos.mock.engine import MockBackend, MockConfig
from aichaos.providers import closest_provider
from aichaos.wire.asgi import Receive, Scope, Send, read_request


class MockApp:
    """ASGI app serving every provider path of the mock; `backend` is its engine.

    With `replay`, answers come from that cassette first; a request it does not hold gets
    the provider's 404 naming the closest recorded request, or (`on_miss="mock"`) the mock's
    own answer.
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        replay: ReplaySource | None = None,
        on_miss: Literal["error", "mock"] = "error",
    ) -> None:
        self.backend = MockBackend(config)
        self.replay, self.on_miss = replay, on_miss

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            req = await read_request(scope, receive, backend="mock")
            delay, reply = self.backend.header_delay, None
            if self.replay is not None:
                # No declared backend here (the mock serves every provider's paths): the
                # provider of a miss's 404 is the one the path belongs to.
                _, found = self.replay.answer_or_miss(
                    req, self.on_miss, lambda: closest_provider(req.path)
                )
                if found is not None:
                    delay, reply = found
            if reply is None:
                reply = self.backend.handle(req)
            await send_reply(reply, send, header_delay=delay, receive=receive)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    config: MockConfig | None = None,
    replay: ReplaySource | None = None,
    on_miss: Literal["error", "mock"] = "error",
) -> MockApp:
    """A new ASGI app for the mock backend (answering from a cassette first with `replay`)."""
    return MockApp(config, replay, on_miss)
