"""Drivers for the system under test: in-process python, an HTTP endpoint, a started command."""

from aichaos.experiment.targets import command, http, python  # noqa: F401  (register the drivers)
from aichaos.experiment.targets.base import (
    Driver,
    TargetError,
    driver_kinds,
    open_driver,
    register_driver,
)

__all__ = ["Driver", "TargetError", "driver_kinds", "open_driver", "register_driver"]
