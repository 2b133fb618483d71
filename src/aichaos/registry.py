"""Registries of pydantic model classes by the default of their discriminator field."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M", bound=BaseModel)


def register(registry: dict[str, type[M]], cls: type[M], field: str) -> None:
    """Add `cls` to `registry` under the default of its discriminator `field` (a fault's
    `kind: Literal["outage"] = "outage"`, a check's `check`); a base without one is left out.

    Called from the base's `__pydantic_init_subclass__`, so a class registers itself when its
    module is imported and the base never imports a kind back.
    """
    info = cls.model_fields.get(field)
    default = info.default if info is not None else None
    if isinstance(default, str) and default:
        registry[default] = cls


class Registered(BaseModel):
    """The base of a family of kinds written in YAML (fault kinds, checks): unknown keys are
    refused, and each subclass registers itself in the family's `kinds` under the default of
    its `discriminator` field when its module is imported."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kinds: ClassVar[dict[str, type[Any]]]
    discriminator: ClassVar[str]
    summary: ClassVar[str] = ""
    """One line for listings (`aichaos faults`, the docs)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        register(cls.kinds, cls, cls.discriminator)
