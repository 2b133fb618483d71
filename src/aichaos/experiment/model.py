"""The experiment format (YAML, version 1) as pydantic models.

Fault entries are exactly the fault kinds of `aichaos.faults` and check entries
the checks of `aichaos.experiment.checks`: both unions are built from their
registries, so a new kind appears here (and in `aichaos schema`) by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, PrivateAttr, field_validator, model_validator

from aichaos.experiment.checks.base import Check, check_kinds
from aichaos.experiment.errors import KeyPath, Problem
from aichaos.experiment.section import Section
from aichaos.experiment.target_specs import Target
from aichaos.faults.base import Fault, fault_kinds
from aichaos.intercept.backends import BackendSpec, check_backend_name, default_backends
from aichaos.mock.engine import MockConfig
from aichaos.units import Duration, Rate

if TYPE_CHECKING:
    from aichaos.experiment.prompts import PromptRecord

    FaultEntry = Fault
    CheckEntry = Check
else:
    FaultEntry = Annotated[Union[tuple(fault_kinds().values())], Field(discriminator="kind")]  # noqa: UP007
    CheckEntry = Annotated[Union[tuple(check_kinds().values())], Field(discriminator="check")]  # noqa: UP007

MESSY_KINDS = ("empty", "long", "unicode", "injection")
MessyKind = Literal["empty", "long", "unicode", "injection"]


class Load(Section):
    """How many requests, how fast, with which prompts."""

    requests: int | None = Field(None, ge=1, description="Requests in the inject phase.")
    duration: Duration | None = Field(None, description="Or: how long the inject phase lasts.")
    concurrency: int | None = Field(
        None, ge=1, le=100_000, description="Closed loop: calls in flight at once (default 1)."
    )
    rate: Rate | None = Field(None, description="Open loop: arrivals per second, e.g. 20/s.")
    arrivals: Literal["constant", "poisson"] = Field(
        "constant", description="Open loop: evenly spaced or Poisson (seeded) arrivals."
    )
    prompts: list[str | dict[str, Any]] | None = Field(
        None, description="Inline prompts (strings, or records with a `prompt` field)."
    )
    prompts_file: str | None = Field(
        None, description="A JSONL or CSV file of prompts (relative to the experiment)."
    )
    messy: list[MessyKind] | None = Field(
        None, description="Add generated messy inputs: empty, long, unicode, injection (or all)."
    )
    timeout: Duration = Field(30.0, description="Per call to the target.")

    @field_validator(
        "messy",
        mode="before",
        json_schema_input_type=list[MessyKind] | MessyKind | Literal["all"] | bool | None,
    )
    @classmethod
    def _all_messy(cls, value: object) -> object:
        if value == "all" or value is True:
            return list(MESSY_KINDS)
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Load:
        if self.requests is None and self.duration is None:
            raise ValueError("load needs `requests` (a count) or `duration` (e.g. 30s)")
        if self.concurrency is not None and self.rate is not None:
            raise ValueError("give `concurrency` (closed loop) or `rate` (open loop), not both")
        if self.timeout <= 0:
            raise ValueError("timeout must be more than 0")
        return self


class LoadOverride(Section):
    """How fast a phase or stage drives load; anything not given comes from `load`."""

    concurrency: int | None = Field(None, ge=1, le=100_000, description="Closed loop override.")
    rate: Rate | None = Field(None, description="Open loop override.")

    @model_validator(mode="after")
    def _one_mode(self) -> LoadOverride:
        self.refuse_both("concurrency", "rate")
        return self


class PhaseSpec(LoadOverride):
    """One phase's size; anything not given comes from `load`."""

    requests: int | None = Field(None, ge=0, description="Requests in this phase (0 skips it).")
    duration: Duration | None = Field(None, description="Or: how long this phase lasts.")


RESERVED_STAGE_NAMES = ("baseline", "inject", "recovery", "all")


class Stage(Section):
    """One step of a game day's timeline: its own faults and load, run after the previous
    stage against the same running target (state carries over)."""

    name: str = Field(
        min_length=1,
        max_length=80,
        description="Unique; checks name it with `stage:`; reports show it on the timeline.",
    )
    description: str | None = Field(None, description="Optional prose.")
    faults: list[FaultEntry] = Field(
        default_factory=list,
        description="Faults on from this stage's start to its end (windows count from its start).",
    )
    requests: int | None = Field(None, ge=1, description="Requests in this stage.")
    duration: Duration | None = Field(None, description="Or: how long this stage lasts.")
    load: LoadOverride | None = Field(
        None, description="`concurrency` or `rate` for this stage (default: the `load` section)."
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value.strip() != value or any(not ch.isprintable() for ch in value):
            raise ValueError("a stage name is printable text without leading or trailing spaces")
        if value in RESERVED_STAGE_NAMES:
            raise ValueError(
                f"{value!r} names a phase; give the stage a name of its own (e.g. primary-down)"
            )
        return value


class Phases(Section):
    """baseline (no faults), inject (faults on), recovery (faults off). `false` skips one."""

    baseline: PhaseSpec | None = Field(
        default_factory=lambda: PhaseSpec(requests=20), description="Default {requests: 20}."
    )
    inject: PhaseSpec | None = Field(
        default_factory=PhaseSpec, description="Default: the `load` section."
    )
    recovery: PhaseSpec | None = Field(
        default_factory=lambda: PhaseSpec(requests=20), description="Default {requests: 20}."
    )

    @field_validator(
        "baseline",
        "inject",
        "recovery",
        mode="before",
        json_schema_input_type=PhaseSpec | Literal[False] | None,
    )
    @classmethod
    def _off(cls, value: object) -> object:
        return None if value is False else value


class MockSettings(Section):
    """How the embedded mock answers when no fault acts."""

    latency: Duration = Field(0.0, description="Delay before each answer's headers.")
    ttft: Duration = Field(0.0, description="Delay before the first token.")
    tokens_per_second: float | None = Field(None, gt=0, description="Stream pacing.")
    max_tokens: int = Field(32, ge=1, description="Longest natural answer, in words.")

    def config(self, seed: int) -> MockConfig:
        """The mock backend's configuration for a run with this seed."""
        return MockConfig(
            seed=seed,
            latency=self.latency,
            ttft=self.ttft,
            tokens_per_second=self.tokens_per_second,
            max_tokens_default=self.max_tokens,
        )


def _backends_shorthand(value: object) -> object:
    if isinstance(value, dict):
        return {k: ({"provider": v} if isinstance(v, str) else v) for k, v in value.items()}
    return value


class Experiment(Section):
    """One experiment file (version 1)."""

    version: Literal[1] = Field(description="The format version: 1.")
    title: str | None = Field(None, description="A one-line name (default: the file name).")
    description: str | None = Field(None, description="Optional prose.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")
    seed: int | None = Field(None, description="Seed for faults, mock replies and arrivals.")
    backends: dict[str, BackendSpec] = Field(
        default_factory=default_backends,
        description="Named model APIs the app talks to (default: openai, anthropic, gemini).",
    )
    target: Target = Field(description="The system under test.")
    load: Load = Field(description="How many requests, how fast, with which prompts.")
    phases: Phases = Field(default_factory=Phases, description="baseline, inject, recovery.")
    faults: list[FaultEntry] = Field(
        default_factory=list, description="Faults active in the inject phase."
    )
    stages: list[Stage] | None = Field(
        None,
        description="Instead of one inject phase: named stages run in order between baseline"
        " and recovery, each with its own faults and load, against one running target.",
        min_length=1,
    )
    hypothesis: list[CheckEntry] = Field(
        default_factory=list, description="Checks that say behaviour is acceptable."
    )
    stop_when: list[CheckEntry] = Field(
        default_factory=list, description="Checks over a sliding window that abort the run."
    )
    mock: MockSettings = Field(default_factory=MockSettings, description="The embedded mock.")

    _source: Path | None = PrivateAttr(None)
    _prompts: list[PromptRecord] = PrivateAttr(default_factory=list)
    _warnings: list[Problem] = PrivateAttr(default_factory=list)

    @field_validator("backends", mode="before", json_schema_input_type=dict[str, BackendSpec | str])
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return _backends_shorthand(value)

    @field_validator("backends")
    @classmethod
    def _names(cls, value: dict[str, BackendSpec]) -> dict[str, BackendSpec]:
        for name in value:
            check_backend_name(name)
        if not value:
            raise ValueError("declare at least one backend")
        return value

    def all_faults(self) -> list[tuple[KeyPath, Fault]]:
        """Every fault with its place in the file: `faults`, then each stage's, in order."""
        found: list[tuple[KeyPath, Fault]] = [(("faults", i), f) for i, f in enumerate(self.faults)]
        for i, stage in enumerate(self.stages or []):
            found += [(("stages", i, "faults", j), f) for j, f in enumerate(stage.faults)]
        return found

    # --- set by the loader ------------------------------------------------------
    @property
    def source(self) -> Path | None:
        """The file the experiment was loaded from."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Where relative paths (prompts_file, cwd) are resolved."""
        return self._source.parent if self._source is not None else Path.cwd()

    @property
    def name(self) -> str:
        """The title, else the file name, for reports."""
        if self.title:
            return self.title
        return self._source.stem if self._source is not None else "experiment"

    @property
    def prompts(self) -> list[PromptRecord]:
        """The prompt records, in the order requests use them (set when loaded)."""
        return self._prompts

    @property
    def warnings(self) -> list[Problem]:
        """Things that are valid but probably not meant (a bare `500` of latency: seconds)."""
        return self._warnings

    def attach(
        self,
        source: Path | None,
        prompts: list[PromptRecord],
        warnings: Sequence[Problem] = (),
    ) -> None:
        """Record where the experiment came from and its resolved prompts (the loader does)."""
        self._source, self._prompts, self._warnings = source, prompts, list(warnings)
