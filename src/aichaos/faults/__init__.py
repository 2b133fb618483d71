"""The fault engine: fault kinds (one small class each, registered by name), triggers, plans."""

from aichaos.faults import kinds as _kinds  # noqa: F401  (registers the built-in kinds)
from aichaos.faults.base import Fault, fault_kinds, parse_fault
from aichaos.faults.engine import FaultEngine
from aichaos.faults.plan import Plan

__all__ = ["Fault", "FaultEngine", "Plan", "fault_kinds", "parse_fault"]
