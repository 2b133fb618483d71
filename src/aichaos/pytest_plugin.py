"""The aichaos pytest plugin, registered through the `pytest11` entry point.

* the `chaos` fixture: faults injected for the test's duration, records to assert on;
* `@pytest.mark.chaos(*faults, backends=..., seed=...)`: the same, declared up front;
* a failing test's report gains an `aichaos` section with the faults and attempts;
* before collection, placeholder API keys for every provider's SDK whose key is not set
  (the fixture's backends are on the mock), so an app that builds its SDK client at import
  time can be collected; `aichaos_placeholder_keys = false` in the ini file turns it off.

Experiment YAML collection (`pytest --aichaos DIR`) is in `aichaos.pytest_experiments`,
loaded from here.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from aichaos.records import CURRENT_CALL, Attempt, CallScope, call_scope

if TYPE_CHECKING:
    from aichaos.faults.base import Fault
    from aichaos.intercept.injection import FaultLike

pytest_plugins = ["aichaos.pytest_experiments"]

_KEY = pytest.StashKey["Chaos"]()


class Chaos:
    """What the `chaos` fixture gives a test.

    Every attempt made while the test runs is recorded; attempts made inside
    `with chaos.call():` blocks are grouped per call, the rest belong to the
    test's own call.
    """

    def __init__(
        self,
        nodeid: str,
        faults: list[FaultLike],
        backends: Mapping[str, object] | None,
        seed: int | str,
    ) -> None:
        import aichaos.proxy.loopback  # noqa: F401  (aiohttp and requests are served through it)
        from aichaos.intercept.injection import Injection  # imported only when a test uses it

        self.injection = Injection(faults, backends=backends, seed=seed)
        self._test_call = CallScope(nodeid)
        self._calls: list[CallScope] = [self._test_call]
        self._previous: CallScope | None = None

    # --- declaring -------------------------------------------------------------------
    def inject(self, kind: str | Fault | Mapping[str, Any], **params: Any) -> str:
        """Add a fault now, e.g. `chaos.inject("outage", backend="openai")`; returns its id.
        A mistake (an unknown kind or key, an undeclared backend) fails the test with the
        message `aichaos validate` gives, "did you mean" included."""
        fault = {"kind": kind, **params} if isinstance(kind, str) else kind
        checked = _checked_fault(fault, "chaos.inject")
        try:
            return self.injection.add(checked)
        except ValueError as exc:  # a backend the test did not declare
            problem = str(exc)
        pytest.fail(f"chaos.inject: {problem}", pytrace=False)  # outside `except`: no chain

    def remove(self, fault_id: str) -> None:
        self.injection.engine.remove(fault_id)

    def clear(self) -> None:
        """Remove every fault (the backends stay intercepted and served as before)."""
        self.injection.engine.clear()

    def call(self, call_id: str | None = None) -> Any:
        """A block whose attempts form one call, e.g. one request your app handles."""
        return _TrackedCall(self, call_id)

    # --- asserting -------------------------------------------------------------------
    @property
    def attempts(self) -> list[Attempt]:
        """Every upstream attempt, in order."""
        return list(self.injection.attempts)

    @property
    def calls(self) -> list[CallScope]:
        """The calls that made attempts: the `chaos.call()` blocks, then the test's own."""
        return [c for c in self._calls if c.attempts]

    def attempts_to(self, backend: str) -> list[Attempt]:
        return [a for a in self.attempts if a.backend == backend]

    @property
    def served_by(self) -> list[str]:
        """The backend that answered each call successfully (None where none did)."""
        return [c.served_by for c in self.calls if c.served_by is not None]

    @property
    def faults_hit(self) -> list[str]:
        return [label for a in self.attempts for label in a.faults]

    def summary(self) -> str:
        rows = [
            (
                a.call_id or "-",
                a.backend,
                f"{a.method} {a.path}",
                ", ".join(a.faults) or "no fault",
                f"-> {a.error or a.status}",
            )
            for a in self.attempts
        ]
        # columns as wide as their widest cell, so every row lines up
        widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
        lines = [f"{len(self.attempts)} upstream attempt(s):"]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  " + "  ".join([*cells, row[4]]))
        return "\n".join(lines)

    # --- lifecycle ----------------------------------------------------------------------
    def _start(self) -> None:
        self.injection.start()
        self._previous = CURRENT_CALL.get()
        CURRENT_CALL.set(self._test_call)

    def _stop(self) -> None:
        self.injection.stop()
        CURRENT_CALL.set(self._previous)


class _TrackedCall:
    def __init__(self, chaos: Chaos, call_id: str | None) -> None:
        self.chaos, self.call_id = chaos, call_id
        self._cm: Any = None

    def __enter__(self) -> CallScope:
        self._cm = call_scope(self.call_id)
        scope: CallScope = self._cm.__enter__()
        self.chaos._calls.insert(len(self.chaos._calls) - 1, scope)
        return scope

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)

    async def __aenter__(self) -> CallScope:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


_MARKER = "@pytest.mark.chaos"
_MARKER_OPTIONS = ("faults", "backends", "seed")


def _checked_fault(fault: object, where: str) -> Fault:
    """A fault as a test gave it (a `Fault`, a mapping, or a kind name), validated as
    `aichaos validate` does; a mistake fails the test with that message, no traceback."""
    from aichaos.faults.base import Fault
    from aichaos.faults.spec import FaultSpecError, build_fault

    if isinstance(fault, Fault):
        return fault
    if isinstance(fault, str):
        fault = {"kind": fault}
    if not isinstance(fault, Mapping):
        pytest.fail(
            f"{where}: a fault is a kind name or a mapping such as"
            f" {{'kind': 'outage', 'backend': 'openai'}}, not {fault!r}",
            pytrace=False,
        )
    try:
        return build_fault(fault)
    except FaultSpecError as exc:
        problem = str(exc)
    pytest.fail(f"{where}: {problem}", pytrace=False)  # outside `except`: no chained trace


def _from_marker(item: pytest.Item) -> Chaos:
    from aichaos.suggest import suggest

    faults: list[FaultLike] = []
    backends: Mapping[str, object] | None = None
    seed: int | str = 0
    for marker in reversed(list(item.iter_markers("chaos"))):  # closest marker wins
        for key in marker.kwargs:
            if key not in _MARKER_OPTIONS:
                pytest.fail(
                    f"{_MARKER}: unknown argument {key!r}{suggest(key, _MARKER_OPTIONS)};"
                    " it takes faults, backends= and seed=. A fault is a mapping or a kind name:"
                    f" {_MARKER}({{'kind': 'latency', 'delay': '1s'}}) or {_MARKER}('outage')",
                    pytrace=False,
                )
        given = [*marker.args, *marker.kwargs.get("faults", [])]
        faults.extend(_checked_fault(fault, _MARKER) for fault in given)
        backends = marker.kwargs.get("backends", backends)
        seed = marker.kwargs.get("seed", seed)
    try:
        return Chaos(item.nodeid, faults, backends, seed)
    except ValueError as exc:  # a backend the marker did not declare, a bad backend spec
        problem = str(exc)
    pytest.fail(f"{_MARKER}: {problem}", pytrace=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "aichaos_placeholder_keys",
        "set placeholder API keys for SDKs whose key is not set (the mock needs none)",
        type="bool",
        default=True,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before any conftest or test module is imported: placeholder keys, as `aichaos run`
    sets them for mock backends (SDK clients refuse to be built without a key)."""
    if not early_config.getini("aichaos_placeholder_keys"):
        return
    from aichaos.providers import get_provider, provider_names

    for name in provider_names():
        sdk = get_provider(name).sdk_env
        if sdk is not None:
            os.environ.setdefault(sdk.api_key, sdk.placeholder_key)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos(*faults, backends=None, seed=0): inject aichaos faults for this test",
    )


@pytest.fixture(autouse=True)
def _aichaos_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start injection for tests marked `@pytest.mark.chaos` even without the fixture."""
    if request.node.get_closest_marker("chaos") is None:
        yield
        return
    chaos = _from_marker(request.node)
    request.node.stash[_KEY] = chaos
    chaos._start()
    try:
        yield
    finally:
        chaos._stop()


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """Faults injected for the test's duration; see `aichaos.pytest_plugin.Chaos`."""
    existing = request.node.stash.get(_KEY, None)
    if existing is not None:
        yield existing
        return
    created = _from_marker(request.node)
    request.node.stash[_KEY] = created
    created._start()
    try:
        yield created
    finally:
        created._stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    chaos = item.stash.get(_KEY, None)
    if chaos is not None and report.failed and call.when == "call":
        report.sections.append(("aichaos", chaos.summary()))
    return report
