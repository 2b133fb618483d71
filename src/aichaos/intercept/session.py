"""One injection: backends, fault engine, mock and recorder, shared by the in-process
transports and the proxy; each exchange's life is driven by `aichaos.exchange`."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aichaos.cassette import CassetteTap, CassetteWriter, ReplaySource
from aichaos.exchange.driver import ExchangeLife
from aichaos.faults.engine import FaultEngine
from aichaos.faults.plan import Plan
from aichaos.intercept.backends import BackendSpec, Router
from aichaos.mock.engine import MockBackend
from aichaos.providers import get_provider
from aichaos.records import Attempt, Recorder
from aichaos.wire.exchange import Reply, RequestInfo


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
        # Cassettes are read now, so a bad one fails here (CassetteError), not mid-run.
        self.replays: dict[str, ReplaySource] = {
            name: ReplaySource(
                directory,
                speed=spec.speed,
                provider=spec.provider,
                backend=name,
                **_ignore(spec),
            )
            for name, spec in backends.items()
            if (directory := spec.replay_dir) is not None
        }
        self._writers: dict[str, CassetteWriter] = {}

    @functools.cached_property
    def router(self) -> Router:
        """Which backend claims a host: only in-process injection routes by host (the proxy
        routes by path), so only it needs every backend to claim a host of its own."""
        return Router(self.backends)

    def begin(self, backend: str, info: RequestInfo) -> Exchange:
        """Start one exchange of the declared `backend` (KeyError if not declared): stamps
        `info` with the backend and provider, lets the faults decide its `Plan`, and
        records the `Attempt` as begun (request hooks see it first)."""
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

    def life(
        self,
        exchange: Exchange,
        read_timeout: float | None = None,
        on_end: Callable[[Attempt], None] | None = None,
    ) -> ExchangeLife:
        """The driver of one exchange (`read_timeout`: the client's, when played in-process;
        `on_end`: told right after the attempt is recorded)."""
        spec = exchange.spec
        mock: Callable[[], tuple[float, Reply]] | None = None
        if spec.is_mock:
            mock = functools.partial(self._mock_answer, exchange.info)
        elif spec.replay_dir is not None:
            mock = functools.partial(self._replay_answer, exchange)
        tap: CassetteTap | None = None
        if spec.record is not None and spec.is_remote and not exchange.plan.faults:
            # only answers as the upstream gave them: a fault's edits are never recorded
            tap = self.cassette_writer(spec.record).tap(
                exchange.info.backend, exchange.info.provider, exchange.info
            )
        finished = self._finished
        if on_end is not None:

            def finished(attempt: Attempt, plan: Plan, tokens: int) -> None:
                self._finished(attempt, plan, tokens)
                on_end(attempt)

        return ExchangeLife(
            exchange.plan,
            exchange.attempt,
            mock=mock,
            read_timeout=read_timeout,
            finished=finished,
            tap=tap,
        )

    def cassette_writer(self, directory: str) -> CassetteWriter:
        """The writer of the cassette in `directory` (one per directory)."""
        writer = self._writers.get(directory)
        if writer is None:
            writer = self._writers[directory] = CassetteWriter(Path(directory))
        return writer

    def _mock_answer(self, info: RequestInfo) -> tuple[float, Reply]:
        return self.mock.header_delay, self.mock.handle(info)

    def _replay_answer(self, exchange: Exchange) -> tuple[float, Reply]:
        """The cassette's answer; on a miss the mock's (`on_miss: mock`) or the provider's
        404 naming the closest recorded request. The attempt says which (`replay`)."""
        spec = exchange.spec
        hit, found = self.replays[exchange.info.backend].answer_or_miss(
            exchange.info, spec.on_miss, lambda: get_provider(spec.provider)
        )
        exchange.attempt.replay = "hit" if hit else "miss"
        return found if found is not None else self._mock_answer(exchange.info)

    def _finished(self, attempt: Attempt, plan: Plan, tokens: int) -> None:
        """An attempt ended: stateful faults (rate limiters) count it, listeners hear of it."""
        self.engine.observe(plan, attempt.status or 0, tokens)
        self.recorder.finish(attempt)


def _ignore(spec: BackendSpec) -> dict[str, Any]:
    return {} if spec.replay_ignore is None else {"ignore": spec.replay_ignore}
