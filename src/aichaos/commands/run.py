"""`aichaos run FILE...`: run experiments; live progress on a terminal, plain lines otherwise.

Exit codes: 0 every hypothesis held; 1 a hypothesis failed; 2 invalid input or
usage (nothing was run); 3 aborted (stop_when fired) or interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aichaos.commands.options import add_admin_token, port, seed, writable_path

if TYPE_CHECKING:
    from aichaos.experiment.model import Experiment
    from aichaos.experiment.observer import Observer
    from aichaos.experiment.run_result import RunResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 3

# --html / --markdown renderers: (module, function) taking a RunResult and returning text.
RENDERERS = {
    "markdown": ("aichaos.report.markdown", "render_markdown"),
    "html": ("aichaos.report.html", "render_html"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="experiment YAML files")
    parser.add_argument(
        "--seed", type=seed, metavar="N", help="seed for faults, mock replies and arrivals"
    )
    parser.add_argument("--journal", metavar="P", help="write the run's journal (JSON) here")
    parser.add_argument("--junit", metavar="P", help="write JUnit XML (a test case per check)")
    parser.add_argument("--html", metavar="P", help="write an HTML report")
    parser.add_argument("--markdown", metavar="P", help="write a Markdown summary")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and print the plan; send nothing"
    )
    parser.add_argument("--quiet", action="store_true", help="plain output: summaries and verdict")
    parser.add_argument(
        "--metrics-port",
        type=port,
        metavar="P",
        help="serve Prometheus metrics at http://HOST:P/metrics during the run (0 = any port)",
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="follow an already running `aichaos proxy` the app goes through: its attempts and"
        " live fault changes go into the journal, the run's faults are applied there",
    )
    add_admin_token(parser, "the --proxy's admin token")
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics are served on (default 127.0.0.1)",
    )


def output_path(path: str, experiment: Experiment, several: bool) -> Path:
    """With several experiments, `out.json` becomes `out.<file stem>.json` for each."""
    target = Path(path)
    if not several:
        return target
    stem = experiment.source.stem if experiment.source is not None else "experiment"
    return target.with_name(f"{target.stem}.{stem}{target.suffix}")


def _renderers(args: argparse.Namespace) -> dict[str, Any] | None:
    found = {}
    for name, (module, function) in RENDERERS.items():
        if getattr(args, name) is None:
            continue
        try:
            found[name] = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            print(f"aichaos run: --{name} is not available in this installation", file=sys.stderr)
            return None
    return found


def run(args: argparse.Namespace) -> int:
    from aichaos.experiment.errors import ExperimentError
    from aichaos.experiment.loader import load_experiment

    experiments = []
    problems = False
    for path in args.files:
        try:
            experiments.append(load_experiment(path))
            for warning in experiments[-1].warnings:
                print(f"warning: {warning.format()}", file=sys.stderr)
        except ExperimentError as exc:
            problems = True
            print(exc.format(), file=sys.stderr)
    renderers = _renderers(args)
    if problems or renderers is None or not _outputs_writable(args, experiments):
        return EXIT_USAGE
    if args.proxy is not None and args.admin_token is not None:
        from aichaos.proxy.admin import AdminTokenError, check_admin_token

        try:
            check_admin_token(args.admin_token)
        except AdminTokenError as exc:
            print(f"aichaos run: --admin-token: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.dry_run:
        return _dry_run(experiments, args.seed, args.proxy)
    telemetry: list[Observer] = []
    provider = tracer_provider("run")
    if provider is not None:
        from aichaos.experiment.telemetry import TracingObserver

        telemetry.append(TracingObserver(provider.get_tracer("aichaos")))
    try:
        if args.metrics_port is None:
            return _run_all(experiments, args, renderers, telemetry)
        return _run_with_metrics(experiments, args, renderers, telemetry)
    finally:
        if provider is not None:
            provider.shutdown()  # exports the spans still buffered


def tracer_provider(command: str) -> Any:
    """The OpenTelemetry tracer provider the OTEL_* environment configures, or None."""
    from aichaos.telemetry import otel_configured

    if not otel_configured():
        return None
    try:
        from aichaos.telemetry.tracing import tracer_provider_from_env
    except ImportError:
        print(
            f"aichaos {command}: OTEL_* asks for traces, but OpenTelemetry is not installed:"
            " pip install 'aichaos[otel]' (no spans are sent)",
            file=sys.stderr,
        )
        return None
    return tracer_provider_from_env()


def _run_with_metrics(
    experiments: list[Experiment],
    args: argparse.Namespace,
    renderers: dict[str, Any],
    telemetry: list[Observer],
) -> int:
    from aichaos.experiment.telemetry import MetricsObserver
    from aichaos.telemetry.metrics import Metrics, MetricsServer

    metrics = Metrics()
    try:
        server = MetricsServer(metrics, args.metrics_port, args.metrics_host)
    except OSError as exc:
        where = f"{args.metrics_host}:{args.metrics_port}"
        print(f"aichaos run: cannot serve metrics on {where}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"metrics: {server.url}", file=sys.stderr, flush=True)
    with server:
        return _run_all(experiments, args, renderers, [*telemetry, MetricsObserver(metrics)])


def _outputs_writable(args: argparse.Namespace, experiments: list[Experiment]) -> bool:
    """Check every output path before the run: a failed write after it would lose it all."""
    several = len(experiments) > 1
    refusals = []
    for flag in ("journal", "html", "markdown"):
        if getattr(args, flag):
            paths = {output_path(getattr(args, flag), e, several) for e in experiments}
            refusals += [writable_path(f"--{flag}", path) for path in sorted(paths)]
    if args.junit:
        refusals.append(writable_path("--junit", Path(args.junit)))
    for refusal in filter(None, refusals):
        print(f"aichaos run: {refusal}", file=sys.stderr)
    return not any(refusals)


def _dry_run(experiments: list[Experiment], seed: int | None, proxy: str | None) -> int:
    from aichaos.experiment.dry_run import describe
    from aichaos.experiment.runner import resolve_seed
    from aichaos.report.redact import Redactor

    for i, experiment in enumerate(experiments):
        origin = "--seed" if seed is not None else "the file" if experiment.seed else "random"
        text = describe(experiment, resolve_seed(experiment, seed), origin, proxy)
        spec = experiment.model_dump(mode="json", by_alias=True)
        print(("\n" if i else "") + Redactor.for_run(spec).text(text))
    print("dry run: nothing was sent")
    return EXIT_OK


def _run_all(
    experiments: list[Experiment],
    args: argparse.Namespace,
    renderers: dict[str, Any],
    telemetry: list[Observer],
) -> int:
    import anyio

    from aichaos.experiment.errors import ExperimentError
    from aichaos.experiment.runner import run_experiment
    from aichaos.report.console import make_console

    several = len(experiments) > 1
    results: list[RunResult] = []
    codes = []
    for experiment in experiments:
        observer: Observer = make_console(quiet=args.quiet)
        if telemetry:
            from aichaos.experiment.observer import Observers

            observer = Observers(observer, *telemetry)
        try:
            job = functools.partial(
                run_experiment,
                experiment,
                args.seed,
                observer,
                handle_signals=True,
                proxy=args.proxy,
                admin_token=args.admin_token,
            )
            result = anyio.run(job)
        except ExperimentError as exc:
            observer.close()
            print(exc.format(), file=sys.stderr)
            codes.append(EXIT_USAGE)
            continue
        finally:
            observer.close()
        results.append(result)
        codes.append(result.exit_code)
        with _uninterrupted():
            if not _write_outputs(result, args, renderers, several):
                codes.append(EXIT_USAGE)
        if result.status == "interrupted":
            break
    if args.junit and results:
        from aichaos.report.junit import write_junit

        with _uninterrupted():
            if not _written("--junit", args.junit, lambda: write_junit(results, args.junit)):
                codes.append(EXIT_USAGE)
    for code in (EXIT_USAGE, EXIT_ABORTED, EXIT_FAILED):
        if code in codes:
            return code
    return EXIT_OK


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C waits while outputs are written: a half-written journal helps nobody."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_outputs(
    result: RunResult, args: argparse.Namespace, renderers: dict[str, Any], several: bool
) -> bool:
    """Write each output asked for; one that cannot be written (a device, a full disk: what
    the check before the run cannot foresee) is reported and the others are still written.
    False when any failed."""
    from aichaos.report.redact import Redactor

    ok = True
    if args.journal:
        from aichaos.report.journal import write_journal

        path = output_path(args.journal, result.experiment, several)
        ok &= _written("--journal", path, lambda: write_journal(result, path))
    spec = result.experiment.model_dump(mode="json", by_alias=True)
    for name, render in renderers.items():
        path = output_path(getattr(args, name), result.experiment, several)

        def write(path: Path = path, render: Any = render) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Redactor.for_run(spec).text(str(render(result))), encoding="utf-8")

        ok &= _written(f"--{name}", path, write)
    return ok


def _written(flag: str, path: object, write: Callable[[], object]) -> bool:
    try:
        write()
    except OSError as exc:
        print(
            f"aichaos run: {flag} {path}: cannot write it: {exc.strerror or exc}", file=sys.stderr
        )
        return False
    return True
