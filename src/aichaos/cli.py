"""The `aichaos` command line.

Each command lives in `aichaos.commands.<name>` and is imported only when run,
so `aichaos --help` stays fast. Exit codes: 0 ok, 1 hypothesis failed, 2 bad
input or usage, 3 aborted or interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from aichaos import __version__

TYPE_CHECKING = False  # not typing's: importing typing (and argparse) is most of --version
if TYPE_CHECKING:
    import argparse

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 3

# name -> (module in aichaos.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run experiments: faults on, load on, hypothesis judged"),
    "validate": ("validate", "check experiment files without running anything"),
    "schema": ("schema", "print the JSON Schema of the experiment format"),
    "faults": ("faults", "list every fault kind with its parameters and defaults"),
    "mock": ("mock", "serve the embedded mock model backend (all provider paths)"),
    "demo": ("demo", "show a fault hitting a real SDK call, offline"),
    "proxy": ("proxy", "the chaos proxy for out-of-process apps and game days"),
    "fault": ("fault", "change a running proxy's faults live (add/list/remove/clear)"),
    "report": ("report", "render a journal as Markdown or HTML"),
    "compare": ("compare", "show what changed between two runs, beyond noise"),
    "trend": ("trend", "each figure across runs (oldest first), drift flagged"),
    "cassette": ("cassette", "import HAR files into cassettes, and list what a cassette holds"),
}


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The full parser; with `only`, just that command's options are configured (the others
    are listed, not imported), so running one command imports one command module."""
    import argparse  # not for --version and --help (see _main): they print and exit

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    parser = _Parser(
        prog="aichaos",
        description="Chaos engineering and fault injection for applications built on LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"aichaos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules: dict[str, str] = {}
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            _lazy(module, "configure")(command_parser)
        modules[name] = module
    return parser, modules


def _lazy(module: str, attr: str) -> Callable[..., object]:
    def call(*args: object) -> object:
        return getattr(importlib.import_module(f"aichaos.commands.{module}"), attr)(*args)

    return call


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while the command's modules load (seconds under load)
        print("interrupted", file=sys.stderr)
        return EXIT_ABORTED


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in ("-h", "--help"):
        # Help without importing any command module: starts in milliseconds.
        _print_help()
        return EXIT_OK if args_list else EXIT_USAGE
    if args_list == ["--version"]:
        print(f"aichaos {__version__}")
        return EXIT_OK
    parser, modules = build_parser(only=args_list[0] if args_list[0] in COMMANDS else None)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    result = _lazy(modules[args.command], "run")(args)
    code = int(result) if isinstance(result, int) else EXIT_OK
    if argv is None:  # the process itself (not a call from Python): it ends here
        _exit_if_calls_were_abandoned(code)
    return code


def _exit_if_calls_were_abandoned(code: int) -> None:
    """Exit now, once the exit handlers ran, when a run left sync calls blocked in their
    threads (Ctrl-C, timeouts): the interpreter's own shutdown takes about 2 s per hundred
    of them, and nothing of theirs is wanted any more (the outputs are written)."""
    targets = sys.modules.get("aichaos.experiment.targets.python")
    if targets is None or not targets.abandoned_calls():
        return
    import atexit

    atexit._run_exitfuncs()  # telemetry exporters flush here, as at a normal exit
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_help() -> None:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: aichaos [--version] COMMAND ...",
        "",
        "Chaos engineering and fault injection for applications built on LLMs.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items()),
        "",
        "Run `aichaos COMMAND --help` for a command's options.",
        "Exit codes: 0 ok, 1 a hypothesis failed, 2 invalid input or usage, 3 aborted.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
