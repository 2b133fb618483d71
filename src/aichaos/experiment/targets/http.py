"""HTTP targets: an app that is already running. aichaos sends each request and judges the answer.

The app's own model calls reach aichaos through the chaos proxy, started on a
free port for the run; its URLs are available as `{{backends.NAME.url}}`.
Each request carries a fresh W3C `traceparent` and an `x-aichaos-call` header:
an app that forwards either to its model calls (OpenTelemetry forwards
`traceparent` by itself) gets exact per-call attribution; otherwise attempts are
tied by inference (see `experiment/attribution.py`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from aichaos.experiment.attribution import TRACEPARENT, new_traceparent
from aichaos.experiment.prompts import PromptRecord
from aichaos.experiment.results import CallRecord
from aichaos.experiment.statuses import any_matches
from aichaos.experiment.target_specs import HttpTarget
from aichaos.experiment.targets.answer_text import AnswerReader
from aichaos.experiment.targets.base import (
    RunContext,
    TargetError,
    first_line,
    register_driver,
)
from aichaos.experiment.templating import lookup, render, render_value
from aichaos.proxy.headers import CALL_HEADER as CALL_HEADER_BYTES
from aichaos.records import Attempt, error_name

CALL_HEADER = CALL_HEADER_BYTES.decode()  # the proxy reads the same header


class HttpDriver:
    """Sends one templated request per call and reads the answer (streamed when asked)."""

    def __init__(
        self,
        spec: HttpTarget,
        client: httpx.AsyncClient,
        variables: dict[str, Any],
        origin: float,
    ) -> None:
        self.spec, self.client, self.variables, self.origin = spec, client, variables, origin
        self.calls: dict[str, CallRecord] = {}

    def attempt_finished(self, attempt: Attempt) -> None:
        """Attribute a proxied attempt that named its call."""
        call = self.calls.get(attempt.call_id or "")
        if call is not None and attempt not in call.attempts:
            call.attempts.append(attempt)

    def _scope(self, call: CallRecord, prompt: PromptRecord) -> dict[str, Any]:
        return {
            **self.variables,
            "prompt": prompt.text,
            "record": prompt.as_record(),
            "call_id": call.id,
            "index": call.index,
            "phase": call.phase,
        }

    async def call(self, call: CallRecord, prompt: PromptRecord) -> None:
        scope = self._scope(call, prompt)

        def resolve(name: str) -> Any:
            return lookup(name, scope)

        spec = self.spec
        headers = {render(k, resolve): render(v, resolve) for k, v in spec.headers.items()}
        headers[CALL_HEADER] = call.id
        headers[TRACEPARENT], call.trace_id = new_traceparent()
        request: dict[str, Any] = {"headers": headers}
        if spec.json_body is not None:
            request["json"] = render_value(spec.json_body, resolve)
        elif spec.body is not None:
            request["content"] = render(spec.body, resolve).encode()
        self.calls[call.id] = call
        reader = AnswerReader(spec.output)
        try:
            async with self.client.stream(spec.method, render(spec.url, resolve), **request) as r:
                call.status = r.status_code
                async for chunk in r.aiter_bytes():
                    if reader.feed(chunk) and call.ttft is None and spec.stream:
                        call.ttft = time.perf_counter() - self.origin - call.started
        except httpx.HTTPError as exc:
            call.ok, call.error, call.message = False, error_name(exc), first_line(exc)
            call.output = "".join(reader.pieces) or None
            return
        answer = reader.finish()
        call.output = answer.text
        call.ok = any_matches(list(spec.success), call.status)
        if not call.ok:
            call.error = f"http_{call.status}"
            call.message = b"".join(reader.chunks).decode("utf-8", "replace")[:300]
        elif answer.error is not None:
            call.ok, call.error, call.message = False, answer.error, answer.message


@contextlib.asynccontextmanager
async def proxied_backends(ctx: RunContext) -> AsyncIterator[dict[str, str]]:
    """Serve the run's backends through the chaos proxy; yields each backend's URL (a live
    proxy's, with `run --proxy`)."""
    if ctx.backend_urls is not None:
        yield dict(ctx.backend_urls)
        return
    try:
        from aichaos.proxy import serve_proxy
    except ImportError:
        raise TargetError(
            "http and command targets reach their model backends through the chaos proxy"
            " (aichaos.proxy), which this installation does not have yet; use a python target"
        ) from None
    # No admin API: faults must stay under the run's control (inject phase only).
    async with serve_proxy(ctx.injection.session, host="127.0.0.1", port=0, admin=False) as proxy:
        yield {name: proxy.backend_url(name) for name in ctx.experiment.backends}


def http_client(max_in_flight: int) -> httpx.AsyncClient:
    """The client that sends the requests of http and command targets."""
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    # No client timeout: the run's per-call `timeout` governs; no proxies from the environment.
    return httpx.AsyncClient(timeout=None, limits=limits, trust_env=False)


def template_variables(urls: dict[str, str], port: int | None = None) -> dict[str, Any]:
    """The run-wide `{{...}}` variables: backends, env, and for commands port and python."""
    variables: dict[str, Any] = {
        "backends": {name: {"url": url} for name, url in urls.items()},
        "env": dict(os.environ),
    }
    if port is not None:  # command targets
        variables["port"] = port
        variables["python"] = sys.executable
    return variables


@register_driver("http")
@contextlib.asynccontextmanager
async def http_driver(ctx: RunContext) -> AsyncIterator[HttpDriver]:
    """The driver of an http target, with the chaos proxy serving its backends."""
    spec = ctx.experiment.target.http
    assert spec is not None
    async with proxied_backends(ctx) as urls, http_client(ctx.max_in_flight) as client:
        driver = HttpDriver(spec, client, template_variables(urls), ctx.clock_origin)
        ctx.injection.recorder.listeners.append(driver.attempt_finished)
        try:
            yield driver
        finally:
            ctx.injection.recorder.listeners.remove(driver.attempt_finished)
