"""`aichaos proxy`: the chaos reverse proxy for out-of-process apps and game days."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aichaos.commands.options import (
    add_admin_token,
    port,
    positive_duration,
    positive_int,
    seed,
    size,
)

if TYPE_CHECKING:
    from aichaos.proxy.config import ProxySettings


DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8800


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any)"
    )
    parser.add_argument(
        "--experiment",
        type=Path,
        metavar="FILE",
        help="take backends, faults, mock settings and seed from an experiment file",
    )
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a backend and its upstream (repeatable): openai=https://api.openai.com,"
        " fallback=anthropic@https://api.anthropic.com, claude=mock",
    )
    add_admin_token(
        parser,
        "token every admin request must carry, required when binding beyond loopback",
        metavar="TOKEN",
    )
    parser.add_argument(
        "--record",
        metavar="DIR",
        default=None,
        help="write every exchange with a real upstream to a cassette in DIR"
        " (replay it with upstream replay:DIR; see docs/record-replay.md)",
    )
    parser.add_argument("--no-admin", action="store_true", help="serve no admin API")
    parser.add_argument("--seed", type=seed, default=None, help="seed for faults and mock replies")
    parser.add_argument(
        "--paused", action="store_true", help="start with injection paused (resume via the admin)"
    )
    parser.add_argument(
        "--view",
        choices=["auto", "live", "lines", "quiet"],
        default="auto",
        help="live table on a terminal, a line per request elsewhere (default auto)",
    )
    parser.add_argument(
        "--upstream-timeout",
        type=positive_duration,
        default=600.0,
        metavar="DURATION",
        help="longest silence accepted from a real upstream: 30s, 2m (default 10m)",
    )
    parser.add_argument(
        "--max-body",
        type=size,
        default=64 * 1024 * 1024,
        metavar="SIZE",
        help="largest request body forwarded, e.g. 32MiB; larger ones get a 413 (default 64MiB)",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        default=1000,
        metavar="N",
        help="most connections open to one upstream at once (default 1000)",
    )
    parser.add_argument(
        "--header-timeout",
        type=positive_duration,
        default=30.0,
        metavar="DURATION",
        help="time a client has to send a request's head, and longest pause within its"
        " body, before a 408 (default 30s)",
    )


def load_experiment_settings(path: Path) -> ProxySettings:
    """Backends, faults, mock settings and seed of an experiment file, through the
    experiment loader (full validation; its file/line errors become `ProxyConfigError`).

    The target and python checks are not imported: the proxy serves an app running
    elsewhere, and importing it here ran its import-time code, took the SDKs' import time
    (about 1 s for anthropic) and seconds more at exit, and refused an app module the
    proxy's machine cannot import."""
    from aichaos.experiment import ExperimentError, load_experiment
    from aichaos.proxy.config import ProxyConfigError, ProxySettings

    try:
        experiment = load_experiment(path, resolve=False)
    except ExperimentError as exc:
        raise ProxyConfigError(str(exc)) from None
    if any(stage.faults for stage in experiment.stages or []):
        raise ProxyConfigError(
            f"{path}: the proxy takes an experiment's `faults:`; the faults of its `stages`"
            " follow the timeline of `aichaos run`: add them live with `aichaos fault add`"
            " when a stage begins"
        )
    seed = experiment.seed or 0
    return ProxySettings(
        backends=dict(experiment.backends),
        faults=list(experiment.faults),
        mock=experiment.mock.config(seed),
        seed=seed,
    )


def build_settings(experiment: Path | None, upstreams: list[str]) -> ProxySettings:
    """The experiment's backends, then `--upstream` entries replacing or adding backends by
    name. With neither, `DEFAULT_BACKENDS` on the mock; `--upstream` alone serves only
    the backends it names."""
    from aichaos.intercept.backends import default_backends
    from aichaos.proxy.config import ProxySettings, parse_upstream

    if experiment is not None:
        settings = load_experiment_settings(experiment)
    else:
        settings = ProxySettings(backends={} if upstreams else default_backends())
    for text in upstreams:
        name, spec = parse_upstream(text)
        settings.backends[name] = spec
    return settings


def recording(backends: dict[str, Any], directory: str) -> dict[str, Any]:
    """`backends` with every real upstream recording to the cassette in `directory`."""
    from pathlib import Path

    from aichaos.cassette import record_dir_problem
    from aichaos.proxy.config import ProxyConfigError

    problem = record_dir_problem(Path(directory))
    if problem is not None:
        raise ProxyConfigError(f"--record {problem}")
    remote = [name for name, spec in backends.items() if spec.is_remote]
    if not remote:
        raise ProxyConfigError(
            "--record writes exchanges with real upstreams, and no backend has one:"
            " add one with --upstream NAME=URL (e.g. openai=https://api.openai.com)"
        )
    return {
        name: spec.model_copy(update={"record": directory}) if name in remote else spec
        for name, spec in backends.items()
    }


def run(args: argparse.Namespace) -> int:
    from aichaos.cassette import CassetteError
    from aichaos.proxy.config import ProxyConfigError
    from aichaos.proxy.server import AdminExposedError, check_admin_binding

    try:
        settings = build_settings(args.experiment, args.upstream)
        if args.record is not None:
            settings.backends = recording(settings.backends, args.record)
        check_admin_binding(args.host, admin=not args.no_admin, admin_token=args.admin_token)
    except (ProxyConfigError, AdminExposedError) as exc:
        print(f"aichaos proxy: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, settings))
    except CassetteError as exc:
        print(f"aichaos proxy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"aichaos proxy: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(args: argparse.Namespace, settings: ProxySettings) -> None:

    from aichaos.commands.run import tracer_provider
    from aichaos.faults.engine import FaultEngine
    from aichaos.intercept.session import Session
    from aichaos.mock.engine import MockBackend
    from aichaos.proxy.stats import BoundedRecorder

    seed = args.seed if args.seed is not None else settings.seed
    engine = FaultEngine(settings.faults, seed=seed)
    engine.paused = args.paused
    mock = settings.mock.model_copy(update={"seed": seed})
    session = Session(settings.backends, engine, MockBackend(mock), BoundedRecorder(keep=0))
    provider = tracer_provider("proxy")
    if provider is not None:
        from aichaos.telemetry.tracing import Tracing

        Tracing(provider.get_tracer("aichaos")).attach(session)
    try:
        await _serve_session(args, settings, session)
    finally:
        if provider is not None:
            provider.shutdown()  # exports the spans still buffered


async def _serve_session(args: argparse.Namespace, settings: ProxySettings, session: Any) -> None:
    from rich.console import Console

    from aichaos.providers import get_provider
    from aichaos.proxy.server import release_memory_when_idle, serve_proxy
    from aichaos.proxy.view import create_view

    engine = session.engine
    console = Console()
    view = None  # written out once the last exchange has ended (it may hold lines)
    try:
        async with serve_proxy(
            session,
            args.host,
            args.port,
            admin=not args.no_admin,
            admin_token=args.admin_token,
            upstream_read_timeout=args.upstream_timeout,
            max_body=args.max_body,
            max_connections=args.max_connections,
            header_timeout=args.header_timeout,
        ) as proxy:
            engine.start()  # fault windows count from here
            plain: dict[str, Any] = {"highlight": False, "soft_wrap": True}
            console.print(f"aichaos proxy on {proxy.base_url}  (Ctrl-C to stop)", **plain)
            for name, spec in settings.backends.items():
                url = proxy.backend_url(name)
                console.print(
                    f"  {name}: {url}  ({spec.provider} -> {spec.public_upstream})", **plain
                )
                sdk = get_provider(spec.provider).sdk_env
                if sdk is not None:
                    console.print(f"      {sdk.base_url}={url}{sdk.base_path}", **plain)
            if not args.no_admin:
                auth = "token required" if args.admin_token else "loopback only"
                console.print(f"  admin API: {proxy.admin_url} ({auth})", **plain)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            view = create_view(args.view, proxy.stats, engine, console, title="aichaos proxy")
            trim = asyncio.ensure_future(release_memory_when_idle(proxy.stats, stop, every=5.0))
            await view.run(stop)
            await trim
            console.print("stopping", **plain)
    finally:
        if view is not None:
            view.close()
