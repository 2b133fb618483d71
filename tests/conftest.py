"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """`@pytest.mark.anyio` tests run on asyncio (the SDKs' async clients need nothing else)."""
    return "asyncio"


# Tests marked `toxiproxy` run only with TOXIPROXY_URL set; otherwise deselected and reported.
from toxiproxy_report import pytest_collection_modifyitems, pytest_terminal_summary  # noqa: E402, F401
