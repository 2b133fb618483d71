"""The base of every section of the experiment format (pydantic models of the YAML)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A part of an experiment file: unknown keys are refused; a key is its alias or name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def refuse_both(self, first: str, second: str) -> None:
        """Refuse two fields that exclude each other, named as the file writes them."""
        if getattr(self, first) is not None and getattr(self, second) is not None:
            fields = type(self).model_fields
            keys = [fields[name].alias or name for name in (first, second)]
            raise ValueError(f"give `{keys[0]}` or `{keys[1]}`, not both")
