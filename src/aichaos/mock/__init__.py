"""The embedded mock model backend (all providers, streaming, tools, deterministic text).

`create_app` (the ASGI server, an I/O layer that plays exchange lives) is imported on first
use: importing `aichaos.mock.engine` (decisions, no I/O) runs this file and must not pull the
exchange layer in with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aichaos.mock.engine import MockBackend, MockConfig

if TYPE_CHECKING:
    from aichaos.mock.app import create_app

__all__ = ["MockBackend", "MockConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aichaos.mock.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
