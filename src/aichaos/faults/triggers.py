"""When a fault fires: match, window, ramp, first/every and a seeded probability."""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field

from aichaos.units import Duration
from aichaos.wire.exchange import RequestInfo


class Window(BaseModel):
    """When the fault is active: seconds from the start of injection, or, for a fault added
    to a running engine (`aichaos fault add`), from the moment it was added."""

    model_config = ConfigDict(extra="forbid")
    start: Duration = 0.0
    duration: Duration | None = None

    def contains(self, elapsed: float) -> bool:
        if elapsed < self.start:
            return False
        return self.duration is None or elapsed < self.start + self.duration

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.start + self.duration


class Ramp(BaseModel):
    """A brownout: the share of requests hit moves from `from` to `to` over `over`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: float = Field(0.0, alias="from", ge=0.0, le=1.0)
    to: float = Field(1.0, ge=0.0, le=1.0)
    over: Duration

    def probability(self, elapsed: float) -> float:
        progress = 1.0 if self.over <= 0 else min(1.0, max(0.0, elapsed / self.over))
        return self.from_ + (self.to - self.from_) * progress


class Match(BaseModel):
    """Which requests a fault applies to; every given condition must hold. Globs use `*`/`?`."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    model: str | None = None
    stream: bool | None = None
    method: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def matches(self, req: RequestInfo) -> bool:
        if self.path is not None and not fnmatchcase(req.path, self.path):
            return False
        if self.method is not None and req.method.upper() != self.method.upper():
            return False
        if self.stream is not None and req.stream != self.stream:
            return False
        if self.model is not None and not fnmatchcase(req.model or "", self.model):
            return False
        for name, pattern in self.headers.items():
            if not fnmatchcase(req.headers.get(name.lower(), ""), pattern):
                return False
        return True
