"""The experiment runner must never be the bottleneck. Figures from one run on this machine.

1. Throughput: a no-op python target (async, then sync in worker threads), and an async
   target that makes one intercepted call to the embedded mock per request.
2. 2,000 calls in flight at once (SDK calls to the mock held 1 s each): no errors.
3. Open-loop schedule accuracy at 200 arrivals/s.
4. `aichaos --help` start time.

    python benchmarks/bench_runner.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio

from aichaos.experiment import RunResult, parse_experiment, run_experiment

HERE = Path(__file__).parent


def run(text: str) -> RunResult:
    experiment = parse_experiment(textwrap.dedent(text), base_dir=HERE)
    return anyio.run(functools.partial(run_experiment, experiment, 1))


def inject(result: RunResult) -> Any:
    return next(p for p in result.phases if p.name == "inject")


def throughput(target: str, requests: int, concurrency: int) -> tuple[float, int]:
    result = run(
        f"""
        version: 1
        backends: {{openai: openai}}
        target: {{python: "bench_targets:{target}"}}
        load: {{requests: {requests}, concurrency: {concurrency}}}
        phases: {{baseline: false, recovery: false}}
        """
    )
    phase = inject(result)
    failed = sum(1 for c in result.calls if not c.ok)
    return len(result.calls) / (phase.ended - phase.started), failed


def in_flight(concurrency: int) -> tuple[int, int, int, float]:
    result = run(
        f"""
        version: 1
        backends: {{openai: openai}}
        mock: {{latency: 1s}}
        target: {{python: "bench_targets:sdk_call"}}
        load: {{requests: {concurrency * 2}, concurrency: {concurrency}, timeout: 60s}}
        phases: {{baseline: false, recovery: false}}
        """
    )
    phase = inject(result)
    failed = sum(1 for c in result.calls if not c.ok)
    return phase.metrics["peak_in_flight"], len(result.calls), failed, phase.ended - phase.started


def schedule(rate: int, seconds: float) -> dict[str, float]:
    result = run(
        f"""
        version: 1
        target: {{python: "bench_targets:noop"}}
        load: {{duration: {seconds}s, rate: {rate}/s}}
        phases: {{baseline: false, recovery: false}}
        """
    )
    starts = sorted(c.started for c in result.calls)
    lags = sorted(c.started - c.scheduled for c in result.calls if c.scheduled is not None)
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    return {
        "calls": len(starts),
        "expected": rate * seconds,
        "achieved_rate": achieved,
        "rate_error": abs(achieved - rate) / rate,
        "lag_p50_ms": lags[len(lags) // 2] * 1000,
        "lag_p99_ms": lags[int(len(lags) * 0.99) - 1] * 1000,
        "lag_max_ms": lags[-1] * 1000,
    }


def help_time(runs: int = 10) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aichaos", "--help"], capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    scale = 4 if args.quick else 1

    print("runner throughput (closed loop, concurrency 64)")
    for target, label, requests in (
        ("noop", "no-op async target", 40_000),
        ("noop_sync", "no-op sync target (worker threads)", 20_000),
        ("mock_call", "async target, one intercepted httpx call to the mock", 10_000),
        ("sdk_call", "async target, one AsyncOpenAI call to the mock", 4_000),
    ):
        rate, failed = throughput(target, requests // scale, 64)
        print(f"  {label:<55} {rate:>9,.0f} calls/s  failed {failed}")

    concurrency = 2000 // (2 if args.quick else 1)
    peak, calls, failed, seconds = in_flight(concurrency)
    print(f"in flight: peak {peak} concurrent calls (target {concurrency}),")
    print(
        f"  {calls} AsyncOpenAI calls to the mock held 1 s each, {failed} failed, {seconds:.2f} s"
    )

    figures = schedule(200, 5.0 / (2 if args.quick else 1))
    print(
        "open loop at 200/s: {calls} calls (expected {expected:.0f}),"
        " achieved {achieved_rate:.2f}/s (error {rate_error:.3%}),"
        " start lag p50 {lag_p50_ms:.2f} ms, p99 {lag_p99_ms:.2f} ms,"
        " max {lag_max_ms:.2f} ms".format(**figures)
    )
    print(f"aichaos --help: {help_time():.3f} s (best of 10)")


if __name__ == "__main__":
    main()
