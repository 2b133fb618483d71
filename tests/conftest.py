"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture
def anyio_backend() -> str:
    """`@pytest.mark.anyio` tests run on asyncio (the SDKs' async clients need nothing else)."""
    return "asyncio"


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
