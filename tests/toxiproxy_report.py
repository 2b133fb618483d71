"""Tests marked `toxiproxy` need a real Toxiproxy; without `TOXIPROXY_URL` they are not run.

They are deselected (not skipped: nothing pretends to pass) and the end of the run says
so in a line of its own. tests/conftest.py imports these hooks.
"""

from __future__ import annotations

import os

import pytest

NOT_RUN = "real Toxiproxy integration tests not run: TOXIPROXY_URL unset"
DESELECTED = pytest.StashKey[list[str]]()
"""Node ids of the real-Toxiproxy tests left out of this run (empty when none)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TOXIPROXY_URL"):
        config.stash[DESELECTED] = []
        return
    real = [item for item in items if item.get_closest_marker("toxiproxy")]
    config.stash[DESELECTED] = [item.nodeid for item in real]
    if real:
        items[:] = [item for item in items if not item.get_closest_marker("toxiproxy")]
        config.hook.pytest_deselected(items=real)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if os.environ.get("TOXIPROXY_URL"):
        return
    left_out = config.stash.get(DESELECTED, [])
    under_xdist = bool(getattr(config.option, "numprocesses", None))  # workers collect
    if left_out or under_xdist:
        count = f" ({len(left_out)} deselected)" if left_out else ""
        terminalreporter.write_sep(
            "-", f"{NOT_RUN}{count}; see docs/network-faults.md", yellow=True, bold=True
        )
