"""Replay: recorded answers played again, event by event, with their recorded timing.

A recorded answer becomes a `Reply` like the mock's: its bytes, with a `Pause` before each
event for the recorded gap (divided by `speed`), so every fault applies on top of it as on
a mock or live answer, and the answer's head waits the recorded time to first byte. An
answer recorded as cut short is replayed cut short (its connection reset after its bytes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from aichaos.cassette.format import CassetteError, Interaction, read_cassette_dir
from aichaos.cassette.matching import DEFAULT_IGNORE, Matcher
from aichaos.providers.provider import Provider
from aichaos.wire.exchange import Abort, Part, Pause, Reply, RequestInfo

MISS_HEADER = "x-aichaos-replay"
"""Set to `miss` on the error answer to a request the cassette does not hold."""


def _recorded_for(
    recorded: list[Interaction], directory: Path, provider: str, backend: str | None
) -> list[Interaction]:
    """The exchanges for `provider` (those recorded without one count for any), narrowed to
    `backend`'s own when it has some."""
    mine = [i for i in recorded if i.provider in ("", provider)]
    if not mine:
        held = Counter(i.provider for i in recorded)
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(held.items()))
        raise CassetteError(
            f"{directory}: no exchange recorded for provider {provider!r}; it holds {listed}"
        )
    own = [i for i in mine if i.backend == backend]
    return own or mine


class ReplaySource:
    """Answers requests from the cassette in `directory` (read once, at construction).

    For one backend (`provider`, `backend` given) only the exchanges recorded for that
    provider are kept, and of those, the ones recorded through a backend of the same name
    when there are any: a directory recorded from several backends replays each to its own.
    (The stand-alone mock, which serves every provider, gives neither and keeps them all.)
    Raises `CassetteError` when the directory holds no readable cassette, or none for the
    provider.
    """

    def __init__(
        self,
        directory: Path,
        *,
        speed: float = 1.0,
        ignore: Iterable[str] = DEFAULT_IGNORE,
        provider: str | None = None,
        backend: str | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be above 0")
        self.directory = directory
        self.speed = speed
        recorded = read_cassette_dir(directory)
        if provider is not None:
            recorded = _recorded_for(recorded, directory, provider, backend)
        self.matcher = Matcher(recorded, ignore)

    def answer(self, info: RequestInfo) -> tuple[float, Reply] | None:
        """(seconds before the head, the recorded answer), or None when nothing matches."""
        interaction = self.matcher.find(info)
        if interaction is None:
            return None
        return interaction.after / self.speed, Reply(
            interaction.status, list(interaction.headers), answer_parts(interaction, self.speed)
        )

    def answer_or_miss(
        self, info: RequestInfo, on_miss: Literal["error", "mock"], provider: Callable[[], Provider]
    ) -> tuple[bool, tuple[float, Reply] | None]:
        """Replay first: `(True, answer)` on a hit; on a miss `(False, the 404 of `miss`)`
        with `on_miss="error"`, or `(False, None)` with `on_miss="mock"` (the caller's mock
        answers). An answer is (seconds before the head, Reply). `provider` is called only
        for that 404 (each caller knows the provider its own way)."""
        found = self.answer(info)
        if found is not None:
            return True, found
        if on_miss == "mock":
            return False, None
        return False, (0.0, self.miss(info, provider()))

    def miss(self, info: RequestInfo, provider: Provider) -> Reply:
        """The provider's own 404 naming the closest recorded request."""
        closest = self.matcher.closest(info)
        asked = f"{info.method} {info.path}" + (f" model {info.model}" if info.model else "")
        hint = (
            f"; the closest recorded is {closest[0].describe()}, which {closest[1]}"
            if closest is not None
            else ""
        )
        message = (
            f"aichaos replay: no recorded answer in {self.directory} for {asked}{hint}."
            " Record it (aichaos proxy --record), or set `on_miss: mock`."
        )
        return provider.error(info, 404, message=message).with_header(MISS_HEADER, "miss")


def answer_parts(interaction: Interaction, speed: float = 1.0) -> Iterator[Part]:
    """A recorded answer's body: its bytes, a `Pause` before each streamed event for the
    recorded gap (divided by `speed`), and a reset when it was recorded cut short."""
    if interaction.events is None:
        if interaction.body:
            yield interaction.body
    else:
        for delay, data in interaction.events:
            if delay > 0:
                yield Pause(delay / speed)
            yield data
    if interaction.outcome == "connection_dropped":
        yield Abort("reset")
