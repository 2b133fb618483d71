"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import toxiproxy_server

# Tests marked `toxiproxy` run against a real Toxiproxy (the `toxiproxy_url` fixture); when
# none can be had they are deselected and the run says how to enable them.
from toxiproxy_report import (  # noqa: F401
    BINARY,
    availability,
    pytest_collection_modifyitems,
    pytest_terminal_summary,
)

# litellm fetches its model cost map from GitHub when imported (seconds of retries offline)
# unless told to use the copy it ships: set before any test module imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _signal_handlers() -> Iterator[None]:
    """An interrupted run returns with SIGINT and SIGTERM ignored (the CLI is about to exit):
    put this process's handlers back after each test."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


@pytest.fixture
def anyio_backend() -> str:
    """`@pytest.mark.anyio` tests run on asyncio (the SDKs' async clients need nothing else)."""
    return "asyncio"


@dataclass
class CliRun:
    """What `aichaos ARGS` did: its exit code and what it printed (like CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., CliRun]
"""The `cli` fixture's type: `cli(*args, cwd=None, env=None) -> CliRun`."""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run `aichaos ARGS` in this process through the CLI's entry function `aichaos.cli.main`.

    `cli("run", "x.yaml", cwd=..., env={...})`: `cwd` and `env` hold for that call only.
    A subprocess adds only the interpreter's start (tests of `python -m aichaos` itself
    keep one).
    """
    from aichaos.cli import main

    def run(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None) -> CliRun:
        with monkeypatch.context() as patch:
            if cwd is not None:
                patch.chdir(cwd)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            capsys.readouterr()
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run


@pytest.fixture(scope="session")
def baselines() -> dict[str, str]:
    """Each provider's mock answer to the SDK tables' prompt when no fault acts."""
    from sdk_support import baseline_texts  # the SDKs, only for the tests that use them

    return baseline_texts()


@pytest.fixture(scope="session")
def toxiproxy_url(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API URL of a real Toxiproxy: `$TOXIPROXY_URL`, or a toxiproxy-server started here.

    Started once per session (per xdist worker) on 127.0.0.1 at a free port, its output in
    the session's temporary directory, and stopped by its pid at the end.
    """
    external = os.environ.get("TOXIPROXY_URL")
    if external:
        yield external
        return
    available, reason = availability(pytestconfig)
    binary = pytestconfig.stash.get(BINARY, None)
    if not available or binary is None:
        pytest.fail(f"no real Toxiproxy ({reason}): {toxiproxy_server.HOW_TO_ENABLE}")
    log_path = tmp_path_factory.mktemp("toxiproxy") / "toxiproxy-server.log"
    with log_path.open("wb") as log:
        server = toxiproxy_server.start(binary, log)
        try:
            yield server.url
        finally:
            server.stop()
