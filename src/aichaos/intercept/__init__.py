"""In-process interception: `inject()` routes declared backends through the fault engine."""

from aichaos.intercept.backends import BackendSpec
from aichaos.intercept.injection import Injection, inject

__all__ = ["BackendSpec", "Injection", "inject"]
