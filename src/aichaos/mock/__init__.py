"""The embedded mock model backend (all providers, streaming, tools, deterministic text)."""

from aichaos.mock.app import create_app
from aichaos.mock.engine import MockBackend, MockConfig

__all__ = ["MockBackend", "MockConfig", "create_app"]
