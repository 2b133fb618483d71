"""A python target that blocks its worker thread (no SDK imported: a run starts fast)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def touch_then_block(prompt: str) -> str:
    """Note (in $AICHAOS_TEST_MARKER) that calls are under way, then block `prompt` seconds."""
    Path(os.environ["AICHAOS_TEST_MARKER"]).write_text("called")
    time.sleep(float(prompt))
    return "late"
