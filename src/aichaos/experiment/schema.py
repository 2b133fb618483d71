"""The JSON Schema of the experiment format, as editors want it."""

from __future__ import annotations

from typing import Any

from aichaos import __version__
from aichaos.experiment.model import Experiment

SCHEMA_ID = "https://aichaos.dev/schema/experiment-v1.json"


def experiment_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of an experiment file, fault kinds and checks included."""
    schema = Experiment.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "aichaos experiment (version 1)",
        "description": f"An experiment file of aichaos {__version__} (format version 1).",
    }
