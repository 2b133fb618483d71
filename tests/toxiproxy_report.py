"""Tests marked `toxiproxy` run against a real Toxiproxy, or are deselected and said so.

A real Toxiproxy is there when `TOXIPROXY_URL` is set or a toxiproxy-server binary is found
or built (tests/toxiproxy_server.py); the session-scoped fixture `toxiproxy_url`
(tests/conftest.py) starts it. Otherwise the marked tests are deselected (not skipped:
nothing pretends to pass) and the end of the run says so, and how to enable them, in a line
of its own. tests/conftest.py imports these hooks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import toxiproxy_server

NOT_RUN = "real Toxiproxy tests not run"
DESELECTED = pytest.StashKey[list[str]]()
"""Node ids of the real-Toxiproxy tests left out of this run (empty when none)."""
BINARY = pytest.StashKey[Path | None]()
"""The toxiproxy-server binary the fixture starts (None: TOXIPROXY_URL, or none found)."""
REASON = pytest.StashKey[str]()


def availability(config: pytest.Config) -> tuple[bool, str]:
    """(a real Toxiproxy can be had, why not); finds or builds the binary at most once."""
    if os.environ.get("TOXIPROXY_URL"):
        config.stash[BINARY] = None
        return True, ""
    if BINARY not in config.stash:
        found = toxiproxy_server.find_binary()
        reason = ""
        if found is None:
            found, reason = toxiproxy_server.build_binary()
        config.stash[BINARY] = found
        config.stash[REASON] = reason
    return config.stash[BINARY] is not None, config.stash.get(REASON, "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    real = [item for item in items if item.get_closest_marker("toxiproxy")]
    config.stash[DESELECTED] = []
    if not real or availability(config)[0]:
        return
    config.stash[DESELECTED] = [item.nodeid for item in real]
    items[:] = [item for item in items if not item.get_closest_marker("toxiproxy")]
    config.hook.pytest_deselected(items=real)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    left_out = config.stash.get(DESELECTED, [])
    under_xdist = bool(getattr(config.option, "numprocesses", None))  # workers collect
    if left_out:
        reason = config.stash.get(REASON, "") or "no toxiproxy-server binary"
    elif under_xdist and not (os.environ.get("TOXIPROXY_URL") or toxiproxy_server.find_binary()):
        reason = "no toxiproxy-server binary"
    else:
        return
    count = f"{len(left_out)} deselected, " if left_out else ""
    terminalreporter.write_sep(
        "-",
        f"{NOT_RUN} ({count}{reason}): {toxiproxy_server.HOW_TO_ENABLE}",
        yellow=True,
        bold=True,
    )
