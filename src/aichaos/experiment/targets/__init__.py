"""Drivers for the system under test: in-process python, an HTTP endpoint, a started command."""

from aichaos.experiment.targets.base import Driver, TargetError, open_driver

__all__ = ["Driver", "TargetError", "open_driver"]
