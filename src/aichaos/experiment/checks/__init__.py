"""Hypothesis checks: one small class per check, registered by its `check:` name."""

from aichaos.experiment.checks import kinds as _kinds  # noqa: F401  (registers the built-in checks)
from aichaos.experiment.checks.base import Check, CheckContext, Measurement, check_kinds

__all__ = ["Check", "CheckContext", "Measurement", "check_kinds"]
