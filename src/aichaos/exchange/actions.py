"""What an exchange's life asks of its interpreter, and what it is told back (no I/O).

`ExchangeLife.send(result) -> Action` (exchange/driver.py) yields these; each interpreter
(the in-process transports, the proxy, the mock's ASGI player) carries them out:
`Wait(seconds)`, `Fail(kind)`, `FETCH_UPSTREAM` (answered with an `UpstreamAnswer`),
`READ_UPSTREAM` (answered with the next body chunk, None at its end),
`StartAnswer(status, headers)`, `SendBytes(data)`, `FINISH`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

FailKind = Literal["timeout", "reset", "refused"]
"""How a connection fails, whatever the library: read timed out, reset (closed early), refused."""


# --- what to do next ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep `seconds`; `hang`: nothing more will come (a client leaving now gave up)."""

    seconds: float
    hang: bool = False


@dataclass(frozen=True, slots=True)
class Fail:
    """Fail the connection now (after any bytes sent); the life is over."""

    kind: FailKind
    message: str


@dataclass(slots=True)  # not frozen: built per answer, and frozen fields cost 3x to set
class StartAnswer:
    """Send the status line and headers. `length`: the body's size when known in advance."""

    status: int
    headers: list[tuple[str, str]]
    length: int | None = None


@dataclass(slots=True)  # not frozen: see StartAnswer
class SendBytes:
    """Send body bytes; `last`: nothing follows them (FINISH comes next)."""

    data: bytes
    last: bool = False


class _Signal:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


FETCH_UPSTREAM = _Signal("FETCH_UPSTREAM")
"""Send the request to the real upstream; answer with an `UpstreamAnswer`."""
READ_UPSTREAM = _Signal("READ_UPSTREAM")
"""Read the upstream body's next chunk; answer with the bytes, or None at its end."""
FINISH = _Signal("FINISH")
"""The answer went out whole: end the response (the attempt is recorded)."""

Action = Wait | Fail | StartAnswer | SendBytes | _Signal


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """The upstream's answer head; `body`: its whole body when it already arrived."""

    status: int
    headers: list[tuple[str, str]]
    body: list[bytes] | None = None


class UpstreamTap(Protocol):
    """Told what the real upstream answered, before any fault shapes it (a cassette
    recorder): `fetching()` as the request goes, `head()`, each `chunk()`, then `end()`."""

    def fetching(self) -> None: ...
    def head(self, status: int, headers: list[tuple[str, str]]) -> None: ...
    def chunk(self, data: bytes) -> None: ...
    def end(self, outcome: str) -> None: ...
