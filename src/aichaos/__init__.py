"""aichaos: chaos engineering and fault injection for applications built on LLMs."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: `aichaos --version` need not import typing

__version__ = "0.1.0"

if TYPE_CHECKING:
    from typing import Any

    from aichaos.faults.base import Fault
    from aichaos.intercept.injection import Injection, inject
    from aichaos.records import call_scope

__all__ = ["Fault", "Injection", "__version__", "call_scope", "fault", "inject"]


def __getattr__(name: str) -> Any:
    # Lazy: `import aichaos` (and `aichaos --help`) stays fast.
    if name in ("inject", "Injection"):
        import aichaos.proxy.loopback  # noqa: F401  (aiohttp and requests are served through it)
        from aichaos.intercept import injection

        return getattr(injection, name)
    if name == "call_scope":
        from aichaos.records import call_scope

        return call_scope
    if name == "Fault":
        from aichaos.faults.base import Fault

        return Fault
    raise AttributeError(f"module 'aichaos' has no attribute {name!r}")


def fault(kind: str, **params: Any) -> Fault:
    """Build a fault by kind name, e.g. `aichaos.fault("rate_limit", backend="openai")`.

    Raises `FaultSpecError` (a `ValueError`) for an unknown kind or a bad parameter, worded
    as `aichaos validate` words it (the key, what is wrong, "did you mean").
    """
    from aichaos.faults.spec import build_fault

    return build_fault({"kind": kind, **params})
