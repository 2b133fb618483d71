"""Network faults through Toxiproxy: check, create or reuse proxies, follow windows, clean up.

    net = NetworkFaults.from_faults(experiment.faults)   # only the `network` faults
    await net.check()                                    # NetworkError (exit 2): nothing injected
    async with net.injecting():                          # around the inject phase
        ...

`injecting()` creates the proxies that do not exist yet (unless an outer
`proxies()` did), adds each fault's toxic when its window opens (windows are
relative to the moment `injecting()` is entered; a toxic on from the start is in
place before the body runs, so the phase's first requests meet it) and removes
it when the window closes. On the way out, whatever ends the phase (its end, an exception,
Ctrl-C, a `stop_when` cancelling it), it removes every toxic it added and
deletes only the proxies it created; proxies it found, and toxics it did not
add, are left as they were. Cleanup runs shielded from cancellation, each call
under a deadline; what it could not remove is logged and kept in `leftovers`.

A failure to add or remove a toxic during the phase aborts it: the body is
cancelled, cleanup runs, and `injecting()` raises the NetworkError.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from aichaos.faults.base import Fault
from aichaos.faults.kinds.network import Network
from aichaos.network.client import (
    NetworkError,
    ProxyState,
    ToxiproxyAPI,
    ToxiproxyAPIError,
    load_library,
)

log = logging.getLogger("aichaos.network")


@dataclass(frozen=True)
class ToxicSpec:
    """One fault's toxic: where it goes and what it is called in Toxiproxy."""

    index: int
    """The fault's number among all the experiment's faults (`faults`, then each stage's)."""
    fault: Network
    place: str = ""
    """Where the fault is written, e.g. `stages[1].faults[0]` (default `faults[index]`)."""

    @property
    def where(self) -> str:
        return self.place or f"faults[{self.index}]"

    @property
    def api(self) -> str:
        return self.fault.toxiproxy

    @property
    def proxy(self) -> str:
        return self.fault.proxy_name

    @property
    def name(self) -> str:
        """`aichaos_f<index>_<toxic>_<stream>`: unique per fault, recognisable in Toxiproxy."""
        return f"aichaos_f{self.index}_{self.fault.toxic}_{self.fault.stream}"

    @property
    def start(self) -> float:
        return self.fault.window.start if self.fault.window is not None else 0.0

    @property
    def end(self) -> float | None:
        return self.fault.window.end if self.fault.window is not None else None


@dataclass
class _NeededProxy:
    """A Toxiproxy proxy as the run's faults describe it (merged from every fault naming it):
    checked against Toxiproxy before the run, created by the run when it does not exist."""

    api: str
    name: str
    listen: str | None = None
    upstream: str | None = None
    faults: list[str] = field(default_factory=list)  # where each is written


@dataclass(frozen=True)
class NetworkEvent:
    """Something done to Toxiproxy; `at` is seconds since the inject phase began."""

    at: float
    action: str  # proxy created | proxy deleted | toxic added | toxic removed | cleanup failed
    api: str
    proxy: str
    toxic: str | None = None
    detail: str = ""


@dataclass
class _ToxicsScope:
    """One `injecting()` or `proxies()` scope: what it changed, and whether it is closing."""

    closing: bool = False
    attempted: list[ToxicSpec] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    failure: NetworkError | None = None

    def stop(self) -> bool:
        return self.closing


class NetworkFaults:
    """The network faults of one run and the Toxiproxy changes they need."""

    def __init__(
        self,
        faults: Sequence[tuple[int, Network]],
        *,
        call_timeout: float = 10.0,
        places: Sequence[str] = (),
    ) -> None:
        self.toxics = [
            ToxicSpec(index, fault, places[index] if index < len(places) else "")
            for index, fault in faults
        ]
        self.call_timeout = call_timeout
        self.events: list[NetworkEvent] = []
        self.leftovers: list[str] = []
        """What cleanup could not undo, each with the command that does it by hand."""
        self.versions: dict[str, str] = {}
        """Toxiproxy's version per API URL, once `check()` ran."""
        self.listen: dict[str, str] = {}
        """Where each proxy listens (the app connects here), once proxies are set up."""
        self._apis = {
            spec.api: ToxiproxyAPI(spec.api, timeout=call_timeout) for spec in self.toxics
        }
        self._proxies, self._problems = self._needed_proxies()
        self._checked = False
        self._found: dict[tuple[str, str], ProxyState] = {}
        self._created: dict[tuple[str, str], ProxyState] = {}
        self._proxies_open = False
        self._origin: float | None = None

    @classmethod
    def from_faults(
        cls, faults: Iterable[Fault], *, call_timeout: float = 10.0, places: Sequence[str] = ()
    ) -> NetworkFaults:
        """The `network` faults among all of an experiment's faults (others are ignored);
        `places` says where each fault is written, for messages."""
        chosen = [(i, f) for i, f in enumerate(faults) if isinstance(f, Network)]
        return cls(chosen, call_timeout=call_timeout, places=places)

    @property
    def empty(self) -> bool:
        return not self.toxics

    def describe(self) -> list[str]:
        """One line per toxic, for dry runs and live views."""
        lines = []
        for spec in self.toxics:
            end = spec.end
            when = f"from {spec.start:g}s" + (f" to {end:g}s" if end is not None else "")
            lines.append(
                f"{spec.where} {spec.fault.label()} toxicity {spec.fault.toxicity:g}"
                f" on Toxiproxy proxy {spec.proxy!r} at {spec.api}, {when} of its phase"
            )
        return lines

    # --- before the run ----------------------------------------------------------
    def _needed_proxies(self) -> tuple[dict[tuple[str, str], _NeededProxy], list[str]]:
        needed: dict[tuple[str, str], _NeededProxy] = {}
        problems: list[str] = []
        for spec in self.toxics:
            key = (spec.api, spec.proxy)
            proxy = needed.setdefault(key, _NeededProxy(spec.api, spec.proxy))
            given = spec.fault.proxy_spec
            for attr in ("listen", "upstream"):
                value = getattr(given, attr)
                known = getattr(proxy, attr)
                if value is None:
                    continue
                if known is not None and known != value:
                    problems.append(
                        f"{spec.where} gives proxy {spec.proxy!r} {attr} {value},"
                        f" {proxy.faults[0]} gives {known}: one proxy has one {attr}"
                    )
                setattr(proxy, attr, value)
            proxy.faults.append(spec.where)
        return needed, problems

    async def check(self) -> None:
        """Toxiproxy is reachable and can carry every fault; NetworkError otherwise.

        Changes nothing: it reads Toxiproxy's version and the proxies the faults name.
        """
        if self.empty:
            return
        if self._problems:
            raise NetworkError("; ".join(self._problems))
        load_library()
        for url, api in self._apis.items():
            self.versions[url] = await api.version()
        for key, proxy in self._proxies.items():
            state = await self._apis[proxy.api].get_proxy(proxy.name)
            self._check_proxy(proxy, state)
            if state is not None:
                self._found[key] = state
            else:
                self._found.pop(key, None)
        self._checked = True

    def _check_proxy(self, proxy: _NeededProxy, state: ProxyState | None) -> None:
        where = proxy.faults[0]
        if state is None:
            if proxy.upstream is None:
                raise NetworkError(
                    f"Toxiproxy at {proxy.api} has no proxy {proxy.name!r}, and {where} gives no"
                    " `proxy: {upstream: HOST:PORT}` to create it with (the backend's address)"
                )
            return
        if proxy.upstream is not None and state.upstream != proxy.upstream:
            raise NetworkError(
                f"Toxiproxy proxy {proxy.name!r} at {proxy.api} forwards to {state.upstream}, but"
                f" {where} says upstream {proxy.upstream}: correct the experiment, or delete the"
                " proxy so that aichaos creates it (aichaos does not change proxies it finds)"
            )
        if proxy.listen is not None and not _same_address(state.listen, proxy.listen):
            raise NetworkError(
                f"Toxiproxy proxy {proxy.name!r} at {proxy.api} listens on {state.listen}, but"
                f" {where} says listen {proxy.listen}: correct the experiment, or delete the"
                " proxy so that aichaos creates it (aichaos does not change proxies it finds)"
            )
        ours = {s.name for s in self.toxics if (s.api, s.proxy) == (proxy.api, proxy.name)}
        clash = sorted(ours & set(state.toxics))
        if clash:
            hint = f"curl -X DELETE {proxy.api}/proxies/{proxy.name}/toxics/{clash[0]}"
            raise NetworkError(
                f"Toxiproxy proxy {proxy.name!r} already has toxic(s) {', '.join(clash)} (left by"
                f" an earlier run that could not clean up?): remove them first, e.g. {hint}"
            )

    # --- proxies -------------------------------------------------------------------
    @asynccontextmanager
    async def proxies(self) -> AsyncIterator[dict[str, str]]:
        """Create the proxies that do not exist; delete them again on the way out.

        Optional: wrap the whole run (baseline to recovery) in it when the app
        reaches its backends through proxies aichaos creates, so they carry
        traffic in every phase. `injecting()` alone creates them for the inject
        phase only. Yields where each proxy listens.
        """
        if self.empty or self._proxies_open:
            yield self.listen
            return
        if not self._checked:
            await self.check()
        run = _ToxicsScope()
        self._proxies_open = True
        try:
            for key, proxy in self._proxies.items():
                found = self._found.get(key)
                if found is not None:
                    self.listen[proxy.name] = found.listen
                    continue
                assert proxy.upstream is not None  # check() made sure
                # Registered before the call: if the call is given up on (a deadline,
                # Ctrl-C) the proxy may exist all the same, and cleanup deletes it.
                self._created[key] = ProxyState(
                    proxy.name, proxy.listen or "", proxy.upstream, True
                )
                try:
                    state = await self._apis[proxy.api].create_proxy(
                        proxy.name, proxy.upstream, proxy.listen, stop=run.stop
                    )
                except ToxiproxyAPIError:
                    del self._created[key]  # Toxiproxy refused: nothing was created
                    raise
                self._created[key] = state
                self.listen[proxy.name] = state.listen
                self._event("proxy created", proxy.api, proxy.name, detail=f"listen {state.listen}")
            yield self.listen
        finally:
            run.closing = True
            with anyio.CancelScope(shield=True):
                await self._delete_created()
            self._proxies_open = False

    async def _delete_created(self) -> None:
        for (url, name), _state in reversed(list(self._created.items())):
            try:
                await self._apis[url].delete_proxy(name)
            except NetworkError as exc:
                self._leftover(url, name, None, str(exc), f"curl -X DELETE {url}/proxies/{name}")
            else:
                self._event("proxy deleted", url, name)
            self.listen.pop(name, None)
        self._created.clear()

    # --- the inject phase ------------------------------------------------------------
    @asynccontextmanager
    async def injecting(self, only: Collection[int] | None = None) -> AsyncIterator[NetworkFaults]:
        """Toxics follow their windows while inside; all are removed on the way out.

        `only`: the numbers of the faults of this phase (a stage's); default every one.
        """
        toxics = [t for t in self.toxics if only is None or t.index in only]
        if not toxics:
            yield self
            return
        async with self.proxies():
            run = _ToxicsScope()
            self._origin = anyio.current_time()
            body_error: BaseException | None = None
            unwrap: BaseException | None = None
            try:
                from_start = [spec for spec in toxics if spec.start <= 0]
                for spec in from_start:
                    await self._add(spec, run)
                async with anyio.create_task_group() as tg:
                    for spec in toxics:
                        added = spec in from_start
                        tg.start_soon(self._follow_window, spec, run, tg.cancel_scope, added)
                    try:
                        yield self
                    except BaseException as exc:
                        body_error = exc
                        raise
                    finally:
                        tg.cancel_scope.cancel()
            except BaseException as exc:
                # anyio's task group wraps the body's own exception in an exception group;
                # the caller should see its exception as it raised it.
                inner = getattr(exc, "exceptions", None)
                if body_error is None or not (isinstance(inner, tuple) and inner == (body_error,)):
                    raise
                unwrap = body_error
            finally:
                run.closing = True
                with anyio.CancelScope(shield=True):
                    await self._remove_toxics(run)
            if unwrap is not None:
                raise unwrap
            if run.failure is not None:
                raise run.failure

    async def _add(self, spec: ToxicSpec, run: _ToxicsScope) -> None:
        run.attempted.append(spec)  # before the call: given up on, it may exist all the same
        api = self._apis[spec.api]
        await api.add_toxic(spec.proxy, spec.fault.toxic_payload(spec.name), stop=run.stop)
        self._event("toxic added", spec.api, spec.proxy, spec.name, spec.fault.label())

    async def _follow_window(
        self, spec: ToxicSpec, run: _ToxicsScope, scope: anyio.CancelScope, added: bool
    ) -> None:
        assert self._origin is not None
        api = self._apis[spec.api]
        try:
            if not added:
                await anyio.sleep_until(self._origin + spec.start)
                # A call begun is finished and recorded (each has its deadline) even if the
                # phase ends meanwhile: given up on, it would still run in its thread, and
                # the journal would miss a change Toxiproxy made.
                with anyio.CancelScope(shield=True):
                    await self._add(spec, run)
            end = spec.end
            if end is None:
                return
            await anyio.sleep_until(self._origin + end)
            with anyio.CancelScope(shield=True):
                await api.remove_toxic(spec.proxy, spec.name)
                run.removed.add(spec.name)
                self._event("toxic removed", spec.api, spec.proxy, spec.name, "window closed")
        except NetworkError as exc:
            if run.failure is None:
                run.failure = exc
            log.error("network faults: %s; ending the inject phase", exc)
            scope.cancel()

    async def _remove_toxics(self, run: _ToxicsScope) -> None:
        for spec in reversed(run.attempted):
            if spec.name in run.removed:
                continue
            try:
                present = await self._apis[spec.api].remove_toxic(spec.proxy, spec.name)
            except NetworkError as exc:
                hint = f"curl -X DELETE {spec.api}/proxies/{spec.proxy}/toxics/{spec.name}"
                self._leftover(spec.api, spec.proxy, spec.name, str(exc), hint)
                continue
            if present:
                self._event("toxic removed", spec.api, spec.proxy, spec.name, "inject phase over")
            run.removed.add(spec.name)

    # --- records ---------------------------------------------------------------------
    def _elapsed(self) -> float:
        return 0.0 if self._origin is None else anyio.current_time() - self._origin

    def _event(
        self, action: str, api: str, proxy: str, toxic: str | None = None, detail: str = ""
    ) -> None:
        event = NetworkEvent(round(self._elapsed(), 3), action, api, proxy, toxic, detail)
        self.events.append(event)
        what = f"toxic {toxic!r} on proxy {proxy!r}" if toxic else f"proxy {proxy!r}"
        log.info(
            "network faults: %s %s at %s%s", action, what, api, f" ({detail})" if detail else ""
        )

    def _leftover(self, api: str, proxy: str, toxic: str | None, error: str, hint: str) -> None:
        what = f"toxic {toxic!r} on proxy {proxy!r}" if toxic else f"proxy {proxy!r}"
        message = f"could not remove {what} at {api} ({error}); remove it by hand: {hint}"
        self.leftovers.append(message)
        self.events.append(
            NetworkEvent(round(self._elapsed(), 3), "cleanup failed", api, proxy, toxic, error)
        )
        log.error("network faults: %s", message)


def _same_address(actual: str, wanted: str) -> bool:
    """`[::]:18080` (what Toxiproxy reports for 0.0.0.0:18080) matches `0.0.0.0:18080`;
    a wanted port 0 matches any port."""
    a_host, _, a_port = actual.rpartition(":")
    w_host, _, w_port = wanted.rpartition(":")
    if w_port != "0" and a_port != w_port:  # port 0: any free port
        return False
    a_host, w_host = a_host.lower(), w_host.lower()
    for group in ({"", "0.0.0.0", "[::]", "::"}, {"127.0.0.1", "localhost", "[::1]"}):
        if a_host in group and w_host in group:
            return True
    return a_host == w_host
