"""Python targets: a function called in-process under the interception.

Each call runs inside `aichaos.call_scope(call.id)`, so every upstream attempt
its SDK makes (retries and fallbacks included, in threads or tasks) is
attributed to it. Sync functions run in worker threads; async ones on the loop.
A function may return a stream (a generator, or an SDK stream): it is read to
the end and the time to its first text is the call's ttft.

Sync calls run in daemon threads, one per call: a call cut off (its timeout, an interrupt)
is abandoned, and nothing waits for its thread, neither the run nor the interpreter's exit
(a pool's threads are joined at exit, which held an interrupted run for as long as its
calls kept sleeping).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio

from aichaos.experiment.prompts import PromptRecord
from aichaos.experiment.results import CallRecord
from aichaos.experiment.targets.base import (
    RunContext,
    first_line,
    register_driver,
    status_of,
)
from aichaos.experiment.targets.outputs import chunk_text, is_stream, text_of
from aichaos.records import call_scope, error_name


class PythonDriver:
    """Calls `module:function` once per request."""

    def __init__(self, ctx: RunContext) -> None:
        spec = ctx.experiment.target.python
        assert spec is not None
        self.function: Callable[..., Any] = spec.resolved
        self.receives = spec.receives
        self.origin = ctx.clock_origin
        self.is_async = inspect.iscoroutinefunction(self.function) or inspect.isasyncgenfunction(
            self.function
        )
        self.limiter = anyio.CapacityLimiter(max(1, ctx.max_in_flight))

    async def call(self, call: CallRecord, prompt: PromptRecord) -> None:
        argument: Any = prompt.as_record() if self.receives == "record" else prompt.text
        with call_scope(call.id) as scope:
            call.attempts = scope.attempts
            try:
                if self.is_async:
                    text = await self._call_async(argument, call)
                else:
                    async with self.limiter:
                        text = await in_daemon_thread(self._call_sync, argument, call)
            except Exception as exc:
                call.ok, call.error, call.message = False, error_name(exc), first_line(exc)
                call.status = status_of(exc)
                return
        call.ok, call.status, call.output = True, 200, text
        if call.ttft is None:
            call.ttft = self._upstream_ttft(call)

    async def _call_async(self, argument: Any, call: CallRecord) -> str:
        result = self.function(argument)
        if inspect.isawaitable(result):
            result = await result
        if hasattr(result, "__anext__"):
            parts = []
            async for chunk in result:
                parts.append(self._chunk(chunk, call))
            return "".join(parts)
        if is_stream(result):
            return "".join(self._chunk(chunk, call) for chunk in result)
        return text_of(result)

    def _call_sync(self, argument: Any, call: CallRecord) -> str:
        result = self.function(argument)
        if is_stream(result) and hasattr(result, "__next__"):
            return "".join(self._chunk(chunk, call) for chunk in result)
        return text_of(result)

    def _chunk(self, chunk: Any, call: CallRecord) -> str:
        text = chunk_text(chunk)
        if text and call.ttft is None:
            call.ttft = time.perf_counter() - self.origin - call.started
        return text

    def _upstream_ttft(self, call: CallRecord) -> float | None:
        """For a non-streaming function: when its serving streamed attempt got its first token."""
        for attempt in reversed(call.attempts):
            if attempt.ok and attempt.stream and attempt.ttft is not None:
                return attempt.started + attempt.ttft - self.origin - call.started
        return None


T = TypeVar("T")
_THREAD = "aichaos-call"


def abandoned_calls() -> int:
    """Sync calls still running in their threads (after the run that made them, abandoned)."""
    return sum(1 for thread in threading.enumerate() if thread.name == _THREAD)


async def in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a new daemon thread, in a copy of the caller's context (its call
    scope); cancelling the wait abandons the thread, which ends on its own (or with the
    process)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.done():  # not cancelled meanwhile
            outcome()

    def work() -> None:
        try:
            result = context.run(function, *args)
        except BaseException as exc:  # handed to the waiting task as it is
            report = functools.partial(settle, functools.partial(done.set_exception, exc))
        else:
            report = functools.partial(settle, functools.partial(done.set_result, result))
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(report)

    threading.Thread(target=work, name=_THREAD, daemon=True).start()
    return await done


@register_driver("python")
@contextlib.asynccontextmanager
async def python_driver(ctx: RunContext) -> AsyncIterator[PythonDriver]:
    """Intercept the process's HTTP clients for the whole run (faults only act in inject)."""
    with ctx.injection:
        yield PythonDriver(ctx)
