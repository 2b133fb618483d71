"""One injection: backends, fault engine, mock and recorder, and the per-request decisions
shared by the sync and async transports."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aichaos.faults.engine import FaultEngine
from aichaos.faults.plan import Plan
from aichaos.faults.shaping import ResponseShaper
from aichaos.intercept.backends import BackendSpec, Router
from aichaos.mock.engine import MockBackend
from aichaos.providers import get_provider
from aichaos.records import Attempt, Recorder
from aichaos.wire.exchange import Abort, Hang, Pause, RequestInfo


@dataclass
class Exchange:
    """One attempt in flight: its request, plan and record."""

    info: RequestInfo
    spec: BackendSpec
    plan: Plan
    attempt: Attempt

    def upstream_url(self) -> str:
        """Where a real upstream request goes: the upstream's origin + the request's own path.

        In-process the app's SDK already built the full path, so only the
        upstream's scheme, host and port are used.
        """
        origin = urlsplit(self.spec.upstream)
        query = f"?{self.info.query}" if self.info.query else ""
        return f"{origin.scheme}://{origin.netloc}{self.info.path}{query}"


class Session:
    """Everything one `inject()` (or proxy) needs to turn requests into faulty answers."""

    def __init__(
        self,
        backends: dict[str, BackendSpec],
        engine: FaultEngine,
        mock: MockBackend,
        recorder: Recorder,
    ) -> None:
        self.backends = backends
        self.engine = engine
        self.mock = mock
        self.recorder = recorder
        # Called with each request and its fresh attempt record, before it is recorded
        # (the experiment runner notes trace ids and prompts there to tie attempts to calls).
        self.request_hooks: list[Callable[[RequestInfo, Attempt], None]] = []

    @functools.cached_property
    def router(self) -> Router:
        """Which backend claims a host: only in-process injection routes by host (the proxy
        routes by path), so only it needs every backend to claim a host of its own."""
        return Router(self.backends)

    def begin(self, backend: str, info: RequestInfo) -> Exchange:
        spec = self.backends[backend]
        provider = get_provider(spec.provider)
        info.backend, info.provider = backend, provider.name
        dialect = provider.dialect_for(info.method, info.path)
        plan = self.engine.plan(info, provider, dialect)
        attempt = Attempt(
            backend=backend,
            provider=provider.name,
            method=info.method,
            path=info.path,
            model=info.model,
            stream=info.stream,
            faults=list(plan.faults),
            started=time.perf_counter(),
            upstream=spec.public_upstream,  # records never hold credentials
        )
        for hook in self.request_hooks:
            hook(info, attempt)
        self.recorder.begin(attempt)
        return Exchange(info, spec, plan, attempt)

    def mock_answer(self, exchange: Exchange) -> tuple[float, int, list[tuple[str, str]], Any]:
        """The embedded mock's answer: (delay before headers, status, headers, parts)."""
        reply = self.mock.handle(exchange.info)
        return self.mock.header_delay, reply.status, reply.headers, reply.parts()

    def headers_received(self, exchange: Exchange, status: int) -> None:
        exchange.attempt.status = status
        exchange.attempt.headers_at = time.perf_counter() - exchange.attempt.started

    def token_delivered(self, exchange: Exchange) -> None:
        if exchange.attempt.ttft is None:
            exchange.attempt.ttft = time.perf_counter() - exchange.attempt.started

    def finish(self, exchange: Exchange, shaper: ResponseShaper | None, error: str | None) -> None:
        attempt = exchange.attempt
        if attempt.duration is not None:
            return
        attempt.duration = time.perf_counter() - attempt.started
        attempt.error = error
        if shaper is not None and shaper.meter.usage is not None:
            attempt.input_tokens = shaper.meter.usage.input_tokens
            attempt.output_tokens = shaper.meter.usage.output_tokens
        tokens = shaper.meter.tokens if shaper is not None else 0
        self.engine.observe(exchange.plan, attempt.status or 0, tokens)
        self.recorder.finish(attempt)


class PartRunner:
    """Decides how each non-data part plays out for a client, as a real socket would.

    Enforces the client's read timeout over silence (pauses and hangs add up
    until data arrives) and names the exception the client's library raises.
    Sync and async code only add the actual sleeping.
    """

    _FOREVER = 365 * 24 * 3600.0

    def __init__(self, flavor: Any, request: Any) -> None:
        self.flavor, self.request = flavor, request
        self.read_timeout: float | None = flavor.read_timeout(request)
        self.idle = 0.0

    def data(self) -> None:
        self.idle = 0.0

    def step(self, part: Pause | Hang | Abort) -> tuple[float, Exception | None]:
        """Seconds to sleep, then the exception to raise (None: carry on)."""
        if isinstance(part, Abort):
            return 0.0, self.error(part)
        wanted = part.seconds if isinstance(part, Pause) else part.limit
        left = None if self.read_timeout is None else max(self.read_timeout - self.idle, 0.0)
        if left is not None and (wanted is None or wanted >= left):
            return left, self.error(Hang())
        if wanted is None:
            return self._FOREVER, None
        self.idle += wanted
        if isinstance(part, Hang):  # the server gave up before the client did
            return wanted, self.error(
                Abort("reset", "Server disconnected without sending a response.")
            )
        return wanted, None

    def error(self, failure: Abort | Hang) -> Exception:
        """The exception the client's library raises for a failed connection."""
        flavor, request = self.flavor, self.request
        if isinstance(failure, Hang) or failure.reason == "timeout":
            return flavor.ReadTimeout("The read operation timed out", request=request)  # type: ignore[no-any-return]
        if failure.reason == "refused":
            return flavor.ConnectError(failure.message, request=request)  # type: ignore[no-any-return]
        return flavor.RemoteProtocolError(failure.message, request=request)  # type: ignore[no-any-return]


def prelude(plan: Plan) -> list[Pause | Hang | Abort]:
    """What happens before any response head: the faults' delay, then a connection failure."""
    steps: list[Pause | Hang | Abort] = []
    if plan.delay > 0:
        steps.append(Pause(plan.delay))
    if plan.failure is not None:
        steps.append(plan.failure)
    return steps
