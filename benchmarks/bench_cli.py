"""How long `aichaos --help` takes, as a user starts it (the timing claim the tests do not make).

    python benchmarks/bench_cli.py [--runs 10]

Prints the best, median and worst wall time of `python -m aichaos --help` and, for scale,
of `python -c pass` (the interpreter's own start). The help imports no command module,
SDK or HTTP client (tests/test_experiment_cli.py checks that), so the difference between
the two is aichaos's own start.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    for label, args in (
        ("python -c pass", ["-c", "pass"]),
        ("aichaos --help", ["-m", "aichaos", "--help"]),
    ):
        times = timed(args, runs)
        print(
            f"{label:16} best {min(times) * 1000:6.1f} ms  median"
            f" {statistics.median(times) * 1000:6.1f} ms  worst {max(times) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
