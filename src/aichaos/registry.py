"""Registries of pydantic model classes by the default of their discriminator field."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

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
