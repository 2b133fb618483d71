"""The mock backend as a plain ASGI application (no framework)."""

from __future__ import annotations

from aichaos.exchange.asgi import send_reply
from aichaos.mock.engine import MockBackend, MockConfig
from aichaos.wire.asgi import Receive, Scope, Send, read_request


class MockApp:
    """ASGI app serving every provider path of the mock; `backend` is its engine."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.backend = MockBackend(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            req = await read_request(scope, receive, backend="mock")
            reply = self.backend.handle(req)
            await send_reply(reply, send, header_delay=self.backend.header_delay, receive=receive)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(config: MockConfig | None = None) -> MockApp:
    """A new ASGI app for the mock backend."""
    return MockApp(config)
