"""`aichaos.inject(...)`: the public in-process API (sync and async context manager)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aichaos.faults.base import Fault
from aichaos.faults.engine import FaultEngine
from aichaos.faults.spec import FaultSpecError, build_fault, unknown_backends
from aichaos.intercept import patch
from aichaos.intercept.backends import BackendSpec, default_backends, parse_backends
from aichaos.intercept.session import Session
from aichaos.mock.engine import MockBackend, MockConfig
from aichaos.records import Attempt, Recorder

FaultLike = Fault | Mapping[str, Any]


def _to_fault(fault: FaultLike) -> Fault:
    """A fault as given; a mapping with a mistake raises `FaultSpecError` (a `ValueError`)
    with `aichaos validate`'s message: the key, what is wrong, "did you mean"."""
    return fault if isinstance(fault, Fault) else build_fault(fault)


class Injection:
    """Intercept every httpx/httpx2 client in the process while the block runs (`with` or
    `async with`); `aichaos.inject(...)` makes one.

    Declared backends (by default `openai`, `anthropic` and `gemini` on their
    official hosts, served by the embedded mock) are routed through the fault
    engine; any other host passes through untouched::

        with aichaos.inject([{"kind": "outage", "backend": "openai"}]) as chaos:
            app.answer("hi")          # OpenAI fails, the app falls back
        assert chaos.attempts[0].status == 500

    Attributes:
        engine: the fault engine (add, remove, pause faults while active).
        recorder: every upstream attempt made while active.
    """

    def __init__(
        self,
        faults: Iterable[FaultLike] = (),
        *,
        backends: Mapping[str, object] | None = None,
        seed: int | str = 0,
        mock: MockConfig | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        specs = parse_backends(dict(backends)) if backends is not None else default_backends()
        self.backends: dict[str, BackendSpec] = specs
        self.engine = FaultEngine([self._checked(_to_fault(f)) for f in faults], seed=seed)
        self.recorder = recorder or Recorder()
        self.mock = MockBackend(mock or MockConfig(seed=seed if isinstance(seed, int) else 0))
        self.session = Session(specs, self.engine, self.mock, self.recorder)
        self._active = False

    @property
    def attempts(self) -> list[Attempt]:
        return self.recorder.attempts

    def add(self, fault: FaultLike) -> str:
        """Add a fault (a `Fault` or a mapping as in YAML) while active or not; returns its
        id in the engine. Raises `FaultSpecError` (a `ValueError`) for a mistake or a
        backend that is not declared."""
        return self.engine.add(self._checked(_to_fault(fault)))

    def _checked(self, fault: Fault) -> Fault:
        """A fault on a backend nobody declared would never act: a typo would pass a test."""
        for unknown in unknown_backends(fault, self.backends):
            raise FaultSpecError(f"fault {fault.kind!r}: {unknown}")
        return fault

    def start(self) -> Injection:
        """Start intercepting (idempotent) and the faults' clocks (windows, ramps); returns
        self. Raises ValueError when two backends claim one host."""
        if not self._active:
            # Host claims are an in-process rule: checked when interception starts, so the
            # proxy (which routes by path) serves two backends of one provider.
            self.session.router  # noqa: B018  (two backends claiming one host fail here)
            self.engine.start()
            patch.push(self.session)
            self._active = True
        return self

    def stop(self) -> None:
        """Stop intercepting (idempotent): later requests reach their real hosts (the patch
        is removed with the last active injection)."""
        if self._active:
            patch.pop(self.session)
            self._active = False

    def __enter__(self) -> Injection:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Injection:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()


inject = Injection
"""`aichaos.inject(faults, backends=..., seed=..., mock=..., recorder=...)`: an `Injection`."""
