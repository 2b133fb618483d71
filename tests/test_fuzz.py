"""Seeded mutations of every example experiment, and of admin API fault bodies.

Each mutation must load or be refused with problems (`ExperimentError`, a 400), never
raise anything else. Each file's mutations run under a deadline enforced here (a hang
fails the test instead of the suite), and the process's peak memory must stay bounded.
The seeds are fixed: a failure names the file and mutation to replay.
"""

from __future__ import annotations

import random
import resource
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from aichaos.experiment.errors import ExperimentError
from aichaos.experiment.loader import parse_experiment
from aichaos.proxy.admin import AdminAPI
from aichaos.proxy.stats import ProxyStats
from proxy_helpers import make_session
from test_hostile_input import alias_bomb

EXAMPLES = sorted((Path(__file__).parent.parent / "experiments").glob("*.yaml"))
MUTATIONS_PER_FILE = 100
DEADLINE = 120.0  # seconds per file: only a hang gets near it
PEAK_GROWTH_MB = 300

_SCALARS = [
    "-1", "0", "1e309", ".nan", "-.inf", "null", "~", "''", "[]", "{}", "*x", "&x [*x]",
    "[[[[[[[[[[", "true", "10q", "99999999999999999999", "'\x00'", "é", "💥", "-", "?",
    "!!binary aGk=", "!!python/object:os.system", "'{{port}}'", "'{{nope.x}}'", "5/s", "-5/s",
    "1ms", "0s",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits: characters, lines, values, structure."""
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        choice = rng.randrange(8)
        if choice == 0 and text:  # delete a span of characters
            at = rng.randrange(len(text))
            text = text[:at] + text[at + rng.randint(1, 8) :]
            continue
        if choice == 1:  # insert a random character (control characters too)
            at = rng.randrange(len(text) + 1)
            text = (
                text[:at]
                + chr(rng.choice([rng.randrange(32), rng.randrange(32, 0x2FF)]))
                + text[at:]
            )
            continue
        if choice == 2:
            lines.insert(i, lines[rng.randrange(len(lines))])  # duplicate a line
        elif choice == 3:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif choice == 4 and ":" in lines[i]:  # replace a value
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {rng.choice(_SCALARS)}"
        elif choice == 5:  # re-indent a line
            lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()
        elif choice == 6:
            lines.append(rng.choice([alias_bomb(), "x-deep: " + "[" * 200, "\t- tab"]))
        else:
            del lines[i]
        text = "\n".join(lines)
    return text


def _within_deadline(job: Callable[[], None], what: str) -> None:
    failure: list[BaseException] = []

    def work() -> None:
        try:
            job()
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    assert not worker.is_alive(), f"{what}: no answer within {DEADLINE:g}s (a hang)"
    if failure:
        raise failure[0]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_mutated_experiments_load_or_are_refused(example: Path) -> None:
    original = example.read_text(encoding="utf-8")
    rng = random.Random(f"fuzz:{example.name}")
    before = _peak_mb()

    def run() -> None:
        for n in range(MUTATIONS_PER_FILE):
            text = mutate(original, rng)
            try:
                parse_experiment(text, file=example.name, base_dir=example.parent)
            except ExperimentError as exc:
                assert exc.problems, f"{example.name} mutation {n}: an error with no problem"
                shown = exc.format()  # what the CLI prints: it must render, with a place
                assert example.name in shown and "Traceback" not in shown, shown
            except Exception as exc:  # pragma: no cover - the failure being looked for
                raise AssertionError(
                    f"{example.name} mutation {n} raised {type(exc).__name__}: {exc}\n{text}"
                ) from exc

    _within_deadline(run, example.name)
    assert _peak_mb() - before < PEAK_GROWTH_MB


def test_mutated_admin_bodies_get_201_or_400() -> None:
    session = make_session({"openai": "openai", "claude": "anthropic"})
    api = AdminAPI(session, ProxyStats())
    seeds = [
        '{"kind": "outage", "backend": "openai", "probability": 0.5}',
        "- {kind: latency, delay: 2s, backend: claude}\n- {kind: rate_limit, retry_after: 1s}\n",
        '{"kind": "stream_cut", "after": 5, "mode": "drop", "window": {"start": "1s"}}',
        '[{"kind": "error", "status": 503, "match": {"model": "gpt-4*"}}]',
    ]
    rng = random.Random("fuzz:admin")
    before = _peak_mb()

    def run() -> None:
        for n in range(1500):
            body = mutate(rng.choice(seeds), rng).encode("utf-8", "surrogatepass")
            language = rng.choice(["JSON", "YAML"])
            status, payload = api.handle("POST", "/faults", body, language=language)
            assert status in (201, 400), f"mutation {n}: {status} {payload}\n{body!r}"
            if status == 400:
                assert payload["error"]["message"]
                assert "Traceback" not in payload["error"]["message"]
            session.engine.clear()

    _within_deadline(run, "admin bodies")
    assert _peak_mb() - before < PEAK_GROWTH_MB
