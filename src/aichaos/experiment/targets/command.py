"""Command targets: aichaos starts the app, points its backends at the proxy, waits until it is
ready, drives it over HTTP, and always stops it (Ctrl-C and crashes included)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
from anyio.abc import Process, TaskGroup

from aichaos.experiment.model import Experiment
from aichaos.experiment.semantics import placeholder_keys
from aichaos.experiment.target_specs import CommandTarget
from aichaos.experiment.targets.base import RunContext, TargetError, register_driver
from aichaos.experiment.targets.http import (
    HttpDriver,
    http_client,
    proxied_backends,
    template_variables,
)
from aichaos.experiment.templating import lookup, render
from aichaos.paths import UnreadableFile, read_text_file
from aichaos.providers import PROVIDERS
from aichaos.safe_yaml import MAX_DOCUMENT_BYTES

_LONGEST_LINE = 64 * 1024


def env_name(backend: str) -> str:
    """`AICHAOS_BACKEND_<NAME>_URL` for a backend name (upper case, `-` becomes `_`)."""
    return f"AICHAOS_BACKEND_{re.sub(r'[^A-Z0-9]', '_', backend.upper())}_URL"


def backend_env(experiment: Experiment, urls: dict[str, str]) -> dict[str, str]:
    """Environment variables pointing each backend (and each SDK's default) at the proxy.

    Per provider, the SDK variable goes to the backend named like the provider, else the
    first backend of that provider.
    """
    env = {env_name(name): url for name, url in urls.items()}
    for provider in PROVIDERS.values():
        names = [
            n
            for n, spec in experiment.backends.items()
            if spec.provider == provider.name and n in urls
        ]
        if names and provider.sdk_env is not None:
            chosen = provider.name if provider.name in names else names[0]
            env[provider.sdk_env.base_url] = urls[chosen] + provider.sdk_env.base_path
    env.update(placeholder_keys(experiment))
    return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for `{{port}}`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Started:
    """A running command and the tail of its output."""

    def __init__(self, process: Process, spec: CommandTarget) -> None:
        self.process, self.spec = process, spec
        self.tail: deque[str] = deque(maxlen=40)
        self.ready_line = re.compile(spec.ready.line) if spec.ready and spec.ready.line else None
        self.saw_ready_line = anyio.Event()
        self.output_done = anyio.Event()  # the output ended (all of it is in `tail`)

    async def read_output(self) -> None:
        """Keep the tail of the output and watch for the ready line."""
        assert self.process.stdout is not None
        buffer = b""
        try:
            async for data in self.process.stdout:
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                if len(buffer) > _LONGEST_LINE:  # output without newlines: keep memory bounded
                    lines.append(buffer[:_LONGEST_LINE])
                    buffer = b""
                for raw in lines:
                    self._line(raw.decode("utf-8", "replace").rstrip("\r"))
            if buffer:
                self._line(buffer.decode("utf-8", "replace"))
        finally:
            self.output_done.set()

    def _line(self, line: str) -> None:
        self.tail.append(line)
        if self.ready_line is not None and self.ready_line.search(line):
            self.saw_ready_line.set()

    def output(self) -> str:
        """The tail of the output, indented for an error message."""
        return "\n".join(f"  | {line}" for line in self.tail) or "  (no output)"

    async def wait_ready(self, url: str | None, timeout: float, stopping: anyio.Event) -> None:
        """Return once ready (or once the run is stopping); TargetError if it never gets there."""
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as group:
                if url is None:
                    group.start_soon(self._wait_line, group.cancel_scope)
                else:
                    group.start_soon(self._poll, url, group.cancel_scope)
                group.start_soon(self._watch_exit, group.cancel_scope)
                group.start_soon(_cancel_when_set, stopping, group.cancel_scope)
            if stopping.is_set():
                return  # Ctrl-C while starting: the runner runs no phase and stops the command
            if self.process.returncode is not None:
                raise TargetError(
                    f"the command exited with code {self.process.returncode} before it was"
                    f" ready; its last output:\n{self.output()}"
                )
            return
        what = f"{url} to answer" if url else "its ready line"
        raise TargetError(
            f"the command was not ready after {timeout:g}s (waited for {what});"
            f" its last output:\n{self.output()}"
        )

    async def _wait_line(self, scope: anyio.CancelScope) -> None:
        await self.saw_ready_line.wait()
        scope.cancel()

    async def _poll(self, url: str, scope: anyio.CancelScope) -> None:
        async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
            while True:
                try:
                    await client.get(url)
                    break
                except httpx.HTTPError:
                    await anyio.sleep(0.05)
        scope.cancel()

    async def _watch_exit(self, scope: anyio.CancelScope) -> None:
        await self.process.wait()
        scope.cancel()

    async def watch_run(self, ctx: RunContext) -> None:
        """Once started: if the command exits before the run is over, abort the run."""
        await self.process.wait()
        if not ctx.stopping.is_set() and ctx.abort is not None:
            with anyio.move_on_after(0.5):  # its last lines, unless a child holds the pipe
                await self.output_done.wait()
            ctx.abort(
                f"the command exited with code {self.process.returncode} during the run;"
                f" its last output:\n{self.output()}"
            )

    async def stop(self, hurry: anyio.Event) -> None:
        """SIGTERM to the whole process group, then SIGKILL after `stop_timeout` (or at once
        when `hurry` is set: a second Ctrl-C)."""
        with anyio.CancelScope(shield=True):
            if self.process.returncode is None:
                _signal_group(self.process.pid, signal.SIGTERM)
                with anyio.move_on_after(self.spec.stop_timeout):
                    async with anyio.create_task_group() as waiting:
                        waiting.start_soon(_wait_then_cancel, self.process.wait, waiting)
                        waiting.start_soon(_wait_then_cancel, hurry.wait, waiting)
            if self.process.returncode is None:
                _signal_group(self.process.pid, signal.SIGKILL)
                await self.process.wait()


async def _wait_then_cancel(wait: Callable[[], Awaitable[Any]], group: TaskGroup) -> None:
    await wait()
    group.cancel_scope.cancel()


async def _cancel_when_set(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _argv(run: str | list[str], resolve: Any) -> list[str]:
    if isinstance(run, str):
        return [render(part, resolve) for part in shlex.split(run)]
    return [render(part, resolve) for part in run]


@register_driver("command")
@contextlib.asynccontextmanager
async def command_driver(ctx: RunContext) -> AsyncIterator[HttpDriver]:
    """Start the command (proxy first), wait until it is ready, drive it, always stop it."""
    spec = ctx.experiment.target.command
    assert spec is not None
    port = free_port()
    # `files:` are rendered into a private folder (mode 0700), removed when the run ends.
    with tempfile.TemporaryDirectory(prefix="aichaos-files-") as folder:
        async with _command(ctx, spec, port, Path(folder)) as driver:
            yield driver


def _render_files(
    base: Path, templates: dict[str, str], paths: dict[str, str], resolve: Any
) -> None:
    """Render each `files:` template to its path."""
    for name, template in templates.items():
        try:
            text = read_text_file(base / template, MAX_DOCUMENT_BYTES, "template")
        except UnreadableFile as exc:
            why = f"target.command.files.{name}: {exc}"
            raise TargetError(why) from None
        Path(paths[name]).write_text(render(text, resolve), encoding="utf-8")


@contextlib.asynccontextmanager
async def _command(
    ctx: RunContext, spec: CommandTarget, port: int, folder: Path
) -> AsyncIterator[HttpDriver]:
    async with proxied_backends(ctx) as urls:
        variables = template_variables(urls, port)
        paths = {name: str(folder / f"{name}{Path(t).suffix}") for name, t in spec.files.items()}
        variables["files"] = paths

        def resolve(name: str) -> Any:
            return lookup(name, variables)

        _render_files(ctx.experiment.base_dir, spec.files, paths, resolve)
        env = {**os.environ, **backend_env(ctx.experiment, urls), "AICHAOS_PORT": str(port)}
        env.update({k: render(v, resolve) for k, v in spec.env.items()})
        cwd = ctx.experiment.base_dir / (spec.cwd or ".")
        argv = _argv(spec.run, resolve)
        busy = _busy_port(spec, resolve)
        if busy is not None:
            raise TargetError(
                f"port {busy} is already in use before the command started: an app left"
                " running by an earlier run would answer instead of this one; stop it, or use"
                " {{port}}"
            )
        try:
            process = await anyio.open_process(
                _dies_with_us(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: stopping reaches its children too
            )
        except OSError as exc:
            raise TargetError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        started = Started(process, spec)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(started.read_output)
                ready = spec.ready
                url = ready.url if ready else _origin(render(spec.http.url, resolve))
                timeout = ready.timeout if ready else 30.0
                ready_url = render(url, resolve) if url else None
                await started.wait_ready(ready_url, timeout, ctx.stopping)
                ctx.observer.event(f"command started (pid {process.pid}, port {port})")
                group.start_soon(started.watch_run, ctx)
                async with http_client(ctx.max_in_flight) as client:
                    http_variables = {**variables, "env": env}
                    driver = HttpDriver(spec.http, client, http_variables, ctx.clock_origin)
                    ctx.injection.recorder.listeners.append(driver.attempt_finished)
                    try:
                        yield driver
                    finally:
                        ctx.injection.recorder.listeners.remove(driver.attempt_finished)
                group.cancel_scope.cancel()
        finally:
            await started.stop(ctx.hurry)
            await process.aclose()


# Linux: the app gets SIGKILL when the process that started it dies (even by kill -9), so
# no app is left holding its port. Set in a small launcher that then execs the command;
# the setting survives exec.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(70)  # the runner is already gone\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _dies_with_us(argv: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return argv
    setpriv = shutil.which("setpriv")  # util-linux: sets the signal and execs, in ~10 ms
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv]
    return [sys.executable, "-S", "-I", "-c", _LAUNCHER, str(os.getpid()), *argv]


def _busy_port(spec: CommandTarget, resolve: Any) -> int | None:
    """The loopback port the command will be reached on, when something already listens there."""
    ready = spec.ready.url if spec.ready and spec.ready.url else spec.http.url
    try:
        parts = urlsplit(render(ready, resolve))
        port = parts.port
    except ValueError:
        return None
    if port is None or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return port if probe.connect_ex(("127.0.0.1", port)) == 0 else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"
