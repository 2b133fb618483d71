"""What the Prometheus metrics cost: per finished attempt (the proxy's hot path) and per scrape.

    python benchmarks/bench_metrics.py [--attempts 100000] [--series 20]

Prints the mean time of `Metrics.attempt_finished` for a faulted, streamed attempt (a
counter, a fault counter and two histograms), and of one exposition with `--series`
backends' worth of series. Label children are cached, so the per-attempt cost does not
grow with the number of series.
"""

from __future__ import annotations

import argparse
import time

from aichaos.records import Attempt
from aichaos.telemetry.metrics import Metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--series", type=int, default=20)
    args = parser.parse_args()
    metrics = Metrics(in_flight=lambda: {})
    attempts = [
        Attempt(
            backend=f"backend{i}", provider="openai", method="POST", path="/v1/chat/completions",
            model="gpt-4o", stream=True, faults=["rate_limit"], status=429, duration=0.05,
            ttft=0.01, outcome="complete",
        )
        for i in range(args.series)
    ]  # fmt: skip
    started = time.perf_counter()
    for n in range(args.attempts):
        metrics.attempt_finished(attempts[n % len(attempts)])
    per_attempt = (time.perf_counter() - started) / args.attempts
    started = time.perf_counter()
    for _ in range(100):
        body, _ = metrics.exposition()
    per_scrape = (time.perf_counter() - started) / 100
    print(f"attempt_finished: {per_attempt * 1e6:.1f} us per attempt")
    print(f"exposition: {per_scrape * 1e3:.2f} ms per scrape ({len(body)} bytes)")


if __name__ == "__main__":
    main()
