"""The fault interface and the registry of fault kinds (one small class per kind).

A fault kind is a pydantic model: its fields are the kind's parameters, validated
and documented, with defaults that match what the provider really does. The
common trigger fields (`backend`, `probability`, `first`, `every`, `window`,
`ramp`, `match`) live here once.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from pydantic import Field, model_validator

from aichaos.faults.plan import Plan
from aichaos.faults.triggers import Match, Ramp, Window
from aichaos.registry import Registered

_REGISTRY: dict[str, type[Fault]] = {}


class Fault(Registered):
    """Base of every fault kind. Subclasses set `kind` and implement `apply`."""

    kinds = _REGISTRY
    discriminator = "kind"

    kind: str
    name: str | None = Field(
        None,
        description="A name: the fault's label in records and reports, for checks' `during:`.",
    )
    backend: str | list[str] = Field("*", description="A backend name, a list of names, or '*'.")
    probability: float = Field(1.0, ge=0.0, le=1.0, description="Share of matching requests hit.")
    first: int | None = Field(None, ge=1, description="Hit only the first N matching requests.")
    every: int | None = Field(None, ge=1, description="Hit every Nth matching request.")
    window: Window | None = Field(None, description="Active window relative to injection start.")
    ramp: Ramp | None = Field(None, description="Probability rising over time (replaces it).")
    match: Match | None = Field(None, description="Which requests the fault applies to.")

    terminal: ClassVar[bool] = False
    """Whether the fault answers instead of the upstream (only one such fault acts per request)."""

    @model_validator(mode="after")
    def _one_rate_trigger(self) -> Fault:
        if self.ramp is not None and "probability" in self.model_fields_set:
            raise ValueError("give either `probability` or `ramp`, not both (a ramp sets it)")
        return self

    def targets(self, backend: str) -> bool:
        if self.backend == "*":
            return True
        if isinstance(self.backend, str):
            return self.backend == backend
        return backend in self.backend or "*" in self.backend

    def apply(self, plan: Plan, rng: random.Random) -> bool:
        """Record this fault's effect on the plan of a request it hit.

        Returns False when the fault decided not to act after all (a limiter
        under its limit, a content fault on an endpoint without content).
        `rng` is this fault's seeded generator: use it for every random choice.
        """
        raise NotImplementedError

    def observe(self, plan: Plan, status: int, tokens: int) -> None:
        """Called when a request's answer is complete; stateful faults count usage here."""

    def label(self) -> str:
        """A short description for records and live views, e.g. `rate_limit(tokens)`."""
        return self.kind

    @property
    def backends_text(self) -> str:
        """The backends it targets as people read them: `openai` or `openai, claude`."""
        return self.backend if isinstance(self.backend, str) else ", ".join(self.backend)


def fault_kinds() -> dict[str, type[Fault]]:
    """Every registered fault kind by name, in registration order.

    The built-in kinds register when the `aichaos.faults` package is imported,
    which Python does before any of its modules, this one included.
    """
    return dict(_REGISTRY)


def parse_fault(data: dict[str, Any]) -> Fault:
    """Build a fault from its YAML/JSON mapping; raises pydantic ValidationError or KeyError."""
    kinds = fault_kinds()
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise KeyError(kind)
    return kinds[kind].model_validate(data)
