"""`run_experiment`: phases of load against the target, faults only where they belong,
checks at the end.

The run owns one `Injection` (backends, fault engine, mock, recorder) and one target, started
once: baseline, then the inject phase or each stage in order, then recovery. A phase's faults
are on only while it runs (`timeline.FaultSwitch`); when it ends, when a stop_when condition
fires, or on Ctrl-C, they are removed at once.
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any, TypeVar

import anyio

import aichaos.proxy.loopback  # noqa: F401  (serves aiohttp and requests in-process)
from aichaos.experiment.attribution import RequestNotes, Tally, attribute
from aichaos.experiment.checks.base import CheckContext
from aichaos.experiment.errors import ExperimentError
from aichaos.experiment.following import Follower, follow_proxy
from aichaos.experiment.functions import import_paths
from aichaos.experiment.metrics import phase_metrics
from aichaos.experiment.model import Experiment
from aichaos.experiment.network_faults import (
    NoNetwork,
    find_error,
    network_events,
    network_faults,
)
from aichaos.experiment.observer import Observer
from aichaos.experiment.phases import PhasePlan, faults_of, plan_phases
from aichaos.experiment.results import CANCELLED, SHED, CallRecord, CheckResult, PhaseResult
from aichaos.experiment.run_result import RunResult, Status
from aichaos.experiment.schedule import drive
from aichaos.experiment.stopping import StopMonitor, stop_on_signals
from aichaos.experiment.targets.base import Driver, RunContext, open_driver
from aichaos.experiment.timeline import FaultSwitch
from aichaos.faults.base import Fault
from aichaos.intercept.injection import Injection
from aichaos.units import format_duration

MONITOR_INTERVAL = 0.05
SETTLE = 2.0  # seconds a phase waits at most for its attempts' answers to be recorded
E = TypeVar("E", bound=BaseException)


def resolve_seed(experiment: Experiment, seed: int | None) -> int:
    """The seed a run uses: given, else the experiment's, else a fresh one (always recorded)."""
    if seed is not None:
        return seed
    if experiment.seed is not None:
        return experiment.seed
    return random.SystemRandom().randrange(1, 2**31)


async def run_experiment(
    experiment: Experiment,
    seed: int | None = None,
    console: Observer | None = None,
    *,
    handle_signals: bool = False,
    proxy: str | None = None,
    admin_token: str | None = None,
) -> RunResult:
    """Run every phase, judge the hypothesis, and return the result.

    `console` receives live events. With `handle_signals`, SIGINT/SIGTERM end the
    run cleanly with status `interrupted` (use it from a main thread only); an interrupted
    run returns with SIGINT and SIGTERM ignored (later ones are quiet while the caller
    writes its outputs and exits; restore them to go on). With `proxy`
    (a running `aichaos proxy`'s URL, and its `admin_token`), the app's model calls go
    through that proxy, which the run follows (experiment/live_proxy.py).
    Raises `ExperimentError` (a `TargetError`, a `LiveProxyError`) when the target cannot
    be driven or the proxy cannot be followed.
    """
    run = _ExperimentRun(experiment, resolve_seed(experiment, seed), console or Observer())
    run.proxy = (proxy, admin_token) if proxy is not None else None
    try:
        # User functions may import their neighbours lazily, while they run.
        with import_paths(experiment.base_dir):
            return await run.execute(handle_signals=handle_signals)
    except Exception as exc:
        # Task groups wrap errors in exception groups; a target that cannot run is one error.
        found = find_error(exc, ExperimentError)
        if found is not None and found is not exc:
            raise found from None
        raise


class _ExperimentRun:
    def __init__(self, experiment: Experiment, seed: int, observer: Observer) -> None:
        self.experiment, self.seed, self.observer = experiment, seed, observer
        self.plans = plan_phases(experiment)
        config = experiment.mock.config(seed)
        self.injection = Injection((), backends=experiment.backends, seed=seed, mock=config)
        self.rng = random.Random(f"{seed}:arrivals")
        self.prompts = experiment.prompts or []
        stages = [p.name for p in self.plans if p.stage]
        self.monitor = StopMonitor(experiment.stop_when, stages)
        self.calls: list[CallRecord] = []
        self.phases: list[PhaseResult] = []
        self.events: list[dict[str, Any]] = []
        self.switch = FaultSwitch(self.injection.engine, self.now)
        # A fault's number among all the experiment's (its Toxiproxy toxic's name).
        self.numbers = {id(f): i for i, (_, f) in enumerate(experiment.all_faults())}
        self.stopped: tuple[Status, str] | None = None
        self.phase_scope: anyio.CancelScope | None = None
        self.stopping: anyio.Event | None = None
        self.hurry = anyio.Event()  # replaced by the run context's
        self.max_in_flight = 1
        self.origin = time.perf_counter()
        self.net: Any = NoNetwork()
        self.net_seen = 0  # network events already in `events`
        self.counter = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        # Out-of-process apps: note each request's trace id and prompts to tie it to its call.
        self.notes: RequestNotes | None = None
        if experiment.target.kind != "python":
            self.notes = RequestNotes()
            self.injection.session.request_hooks.append(self.notes)
        self.tally = Tally()
        self.tied_upto = 0  # recorder.attempts before this index are attributed
        self.proxy: tuple[str, str | None] | None = None  # `run --proxy`: URL and admin token
        self.follower: Follower | None = None

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def note(self, message: str) -> None:
        self.events.append({"at": round(self.now(), 6), "message": message})
        self.observer.event(message)

    # --- the run ------------------------------------------------------------------
    async def execute(self, *, handle_signals: bool) -> RunResult:
        if self.proxy is None:
            return await self._execute(handle_signals=handle_signals)
        recorder, url, token = self.injection.recorder, *self.proxy
        # connected before any load: exit 2 when the proxy cannot be followed
        async with follow_proxy(url, token, self.experiment, recorder, self.notes) as follower:
            follower.event = self._live_event
            self.follower = follower
            return await self._execute(handle_signals=handle_signals)

    def _live_event(self, at: float, message: str, record: dict[str, Any]) -> None:
        entry: dict[str, Any] = {"at": round(at - self.origin, 6), "message": message}
        if record:  # its time as every time of the journal: seconds from the run's start
            entry["fault_change"] = {**record, "at": entry["at"]}
        self.events.append(entry)
        self.observer.event(message)

    async def _execute(self, *, handle_signals: bool) -> RunResult:
        started_at = time.time()
        self.origin = time.perf_counter()
        self.observer.run_started(self.experiment, self.seed, self.plans)
        self.observer.session_ready(self.injection.session)
        recorder = self.injection.recorder
        recorder.listeners.append(self.observer.attempt_finished)
        most = max((p.concurrency or 0 for p in self.plans), default=1)
        rates = [p.rate * self.experiment.load.timeout for p in self.plans if p.rate]
        ctx = RunContext(
            self.experiment,
            self.injection,
            self.observer,
            self.origin,
            max_in_flight=max(1, most, min(int(max(rates, default=0)) + 1, 1024)),
            abort=lambda reason: self.stop("aborted", reason),  # a command target that died
            backend_urls=self.follower.live.backends if self.follower is not None else None,
        )
        self.max_in_flight = ctx.max_in_flight
        self.hurry = ctx.hurry
        self.stopping = ctx.stopping
        try:
            self.net = await network_faults(self.experiment)
            async with anyio.create_task_group() as background:
                if self.monitor:
                    background.start_soon(self._watch)
                if handle_signals:
                    background.start_soon(stop_on_signals, self.stop, self.interrupted, self.hurry)
                if self.follower is not None:
                    self.follower.present(self.origin)
                    background.start_soon(self.follower.follow)
                try:
                    # Proxies aichaos creates in Toxiproxy carry traffic in every phase.
                    async with self.net.proxies(), open_driver(ctx) as driver:
                        for plan in self.plans:
                            if self.stopped:
                                break
                            await self._phase(plan, driver)
                finally:
                    self._faults_off()
                    await self._live_faults_off()
                    background.cancel_scope.cancel()
            if self.follower is not None:  # what the proxy finished since the last read
                await self.follower.finish(SETTLE)
        finally:
            recorder.listeners.remove(self.observer.attempt_finished)
        return self._result(started_at)

    async def _phase(self, plan: PhasePlan, driver: Driver) -> None:
        phase = PhaseResult(plan.name, started=self.now(), planned=plan.to_dict())
        self.phases.append(phase)
        self.observer.phase_started(plan)
        self.monitor.phase = plan.name
        self.note(f"phase {plan.name} started: {plan.describe()}")
        fire = functools.partial(self._call, plan.name, driver)
        with anyio.CancelScope() as scope:
            self.phase_scope = scope
            if plan.faults:
                faults = faults_of(self.experiment, plan)
                await self._faults_on(phase, faults)
                await self._inject(plan, fire, faults)
            else:
                await self._drive(plan, fire)
        self.phase_scope = None
        phase.ended = self.now()
        self._faults_off(phase.ended)
        await self._live_faults_off()
        phase.completed = not scope.cancel_called
        phase_calls = [c for c in self.calls if c.phase == plan.name]
        if not self.stopped:
            await self._settle()
        tally = self._attribute(phase_calls)
        phase.metrics = phase_metrics(phase_calls, phase.ended - phase.started)
        phase.metrics["attribution"] = tally.to_dict()
        phase.metrics["peak_in_flight"] = self.peak_in_flight
        self.peak_in_flight = 0
        self.observer.phase_finished(phase)

    async def _settle(self) -> None:
        """Wait (briefly) until the attempts begun so far have ended: the proxy records an
        attempt's end just after its app has the answer, so maybe after the call returned."""
        if self.follower is not None:
            await self.follower.settle(SETTLE)
            return
        deadline = time.perf_counter() + SETTLE
        attempts = self.injection.recorder.attempts[self.tied_upto :]
        while any(a.duration is None for a in attempts) and time.perf_counter() < deadline:
            await anyio.sleep(0.01)

    def _attribute(self, calls: list[CallRecord]) -> Tally:
        """Tie the attempts begun since the last phase to this phase's calls (once)."""
        attempts = self.injection.recorder.attempts
        fresh, self.tied_upto = attempts[self.tied_upto :], len(attempts)
        known = {c.id: c for c in self.calls}
        first = min((c.started for c in self.calls), default=float("inf"))
        tally = attribute(calls, fresh, self.origin, self.notes, known, first_call=first)
        self.tally.add(tally)
        return tally

    def _begin(self, phase: str, index: int, prompt: str, due: float | None) -> CallRecord:
        """A call of `phase` begins now (`due`: when its arrival was scheduled, open loop)."""
        call = CallRecord(
            id=f"{phase}-{index + 1}",
            phase=phase,
            index=index,
            prompt=prompt,
            started=self.now(),
            scheduled=None if due is None else due - self.origin,
        )
        self.calls.append(call)
        self.observer.call_started(call)
        return call

    async def _call(self, phase: str, driver: Driver, index: int, due: float | None) -> None:
        prompt = self.prompts[self.counter % len(self.prompts)]
        self.counter += 1
        call = self._begin(phase, index, prompt.text, due)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self.notes is not None:
            self.notes.call_started(call.prompt)
        try:
            timeout = self.experiment.load.timeout
            with anyio.move_on_after(timeout) as timer:
                await driver.call(call, prompt)
            if timer.cancelled_caught:
                call.ok, call.error = False, "timeout"
                call.message = f"no answer within {format_duration(timeout)}"
            call.ended = self.now()
        finally:
            self.in_flight -= 1
            if self.notes is not None:
                self.notes.call_ended(call.prompt)
            if call.ended is None:  # cut off by stop_when or Ctrl-C: no verdict on it
                call.ok, call.error, call.ended = False, CANCELLED, self.now()
                call.message = "cancelled in flight when the run stopped"
        self.monitor.feed(call)
        self.observer.call_finished(call)

    async def _drive(self, plan: PhasePlan, fire: Any) -> None:
        # Open loop: beyond this many calls in flight, the app cannot answer within the
        # timeout anyway; later arrivals are shed (and counted) instead of piling up.
        shed = functools.partial(self._shed, plan.name)
        await drive(plan, fire, self.rng, limit=self.max_in_flight, shed=shed)

    def _shed(self, phase: str, index: int, due: float) -> None:
        call = self._begin(phase, index, "", due)
        call.ok, call.error, call.ended = False, SHED, call.started
        call.message = f"not sent: {self.max_in_flight} calls already in flight (overload)"
        self.monitor.feed(call)
        self.observer.call_finished(call)

    async def _inject(self, plan: PhasePlan, fire: Any, faults: list[Fault]) -> None:
        """An injecting phase's load, with its network toxics following their windows."""
        from_start = self.now()
        only = {self.numbers[id(f)] for f in faults}
        try:
            async with self.net.injecting(only):
                await self._drive(plan, fire)
        except Exception as exc:
            failure = self._network_failure(exc)
            if failure is None:
                raise
            # An experiment that cannot inject what it says proves nothing: stop it.
            self.stop("aborted", f"network faults failed: {failure}")
        finally:
            fresh, self.net_seen = network_events(self.net, self.net_seen, from_start)
            for at, message in fresh:
                self.events.append({"at": round(at, 6), "message": message})
                self.observer.event(message)
            for leftover in self.net.leftovers:
                self.note(f"network cleanup failed: {leftover}")

    def _network_failure(self, exc: BaseException) -> BaseException | None:
        if self.net.empty:
            return None
        from aichaos.network import NetworkError

        return find_error(exc, NetworkError)

    # --- faults -------------------------------------------------------------------
    async def _faults_on(self, phase: PhaseResult, faults: list[Fault]) -> None:
        message = self.switch.on(phase, faults, local=self.follower is None)
        if message:
            self.note(message)
        if self.follower is not None and faults:
            try:
                await self.follower.faults_on(faults, phase.name)
            except Exception as exc:  # refused or unreachable: the run would prove nothing
                self.stop("aborted", f"the live proxy did not take the run's faults: {exc}")

    def _faults_off(self, at: float | None = None) -> None:
        """Faults off at once (a live proxy's: as soon as the phase unwinds, `_live_faults_off`)."""
        message = self.switch.off(at)
        if message:
            self.note(message)

    async def _live_faults_off(self) -> None:
        """Remove the run's faults from the live proxy (also after Ctrl-C: shielded)."""
        if self.follower is None or not self.follower.live.held:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(3 * SETTLE):
            stats, failed = await self.follower.faults_off()
            self.switch.stats += stats
            for problem in failed:
                self.note(f"the live proxy still holds the run's fault {problem}")

    # --- stopping -----------------------------------------------------------------
    def stop(self, status: Status, reason: str) -> None:
        """End the run now: faults off, the current phase cancelled, no further phase."""
        if self.stopped:
            return
        self.stopped = (status, reason)
        self._faults_off()
        self.note(reason)
        if self.stopping is not None:
            self.stopping.set()
        if self.phase_scope is not None:
            self.phase_scope.cancel()

    async def _watch(self) -> None:
        while True:
            await anyio.sleep(MONITOR_INTERVAL)
            reason = self.monitor.fired(self.now())
            if reason is not None:
                self.stop("aborted", reason)
                return

    def interrupted(self) -> bool:
        return self.stopped is not None and self.stopped[0] == "interrupted"

    # --- the verdict --------------------------------------------------------------
    def _result(self, started_at: float) -> RunResult:
        self._attribute([])  # attempts begun after the last phase: only exact ties
        tally = self.tally
        if tally.startup:
            self.note(f"start-up: {tally.startup} upstream attempts before the first call")
        if tally.inferred or tally.ambiguous or tally.outside:
            self.note(
                f"attribution: {tally.exact} upstream attempts tied to their call exactly,"
                f" {tally.inferred} by inference, {tally.ambiguous} could belong to several"
                f" calls, {tally.outside} made outside any call"
            )
        fault_end = self.switch.fault_end
        if self.follower is not None:  # live fault windows end faults too (recovery_time)
            fault_end = self.follower.fault_end(fault_end, self.origin)
            self.follower.live_windows(self.phases, self.origin)
            for why in self.follower.lost():
                self.note(f"records were lost, checks on attempts are INCONCLUSIVE: {why}")
            self.events.sort(key=lambda event: float(event["at"]))
        for phase in self.phases:  # the same records the checks judge, answers now all in
            calls = [c for c in self.calls if c.phase == phase.name]
            elapsed = (phase.ended or self.now()) - phase.started
            phase.metrics.update(phase_metrics(calls, elapsed))
        ctx = CheckContext(
            calls=self.calls,
            phases={p.name: p for p in self.phases},
            fault_end=fault_end,
            base_dir=self.experiment.base_dir,
            started_at=started_at,
            windows=self.switch.windows(self.phases),
            stages=frozenset(p.name for p in self.phases if p.stage),
        )
        checks: list[CheckResult] = [c.evaluate(ctx) for c in self.experiment.hypothesis]
        if self.follower is not None:
            self.follower.judge(checks)
        status: Status
        reason = None
        if self.stopped is not None:
            status, reason = self.stopped
        else:
            status = "passed" if all(c.passed for c in checks) else "failed"
        result = RunResult(
            experiment=self.experiment,
            seed=self.seed,
            status=status,
            checks=checks,
            calls=self.calls,
            phases=self.phases,
            attempts=list(self.injection.recorder.attempts),
            started_at=started_at,
            duration=self.now(),
            clock_origin=self.origin,
            reason=reason,
            faults=self.switch.stats,
            fault_end=fault_end,
            events=self.events,
            attribution=tally.to_dict(),
        )
        self.observer.run_finished(result)
        return result
