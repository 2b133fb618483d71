"""httpx and httpx2 have the same shape; a Flavor names one of them for the transports."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Flavor:
    """One HTTP library (`httpx` or `httpx2`) and the classes the interceptor needs from it."""

    name: str
    module: ModuleType

    def __getattr__(self, item: str) -> Any:
        return getattr(self.module, item)

    def read_timeout(self, request: Any) -> float | None:
        timeout = request.extensions.get("timeout") or {}
        value = timeout.get("read")
        return float(value) if value is not None else None


def available_flavors() -> list[Flavor]:
    """The installed libraries among httpx and httpx2."""
    flavors = []
    for name in ("httpx", "httpx2"):
        try:
            flavors.append(Flavor(name, importlib.import_module(name)))
        except ImportError:
            continue
    return flavors
