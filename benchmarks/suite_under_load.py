"""Is the test suite stable on a busy machine? The whole suite, N times in a row, under CPU load.

    python benchmarks/suite_under_load.py [--runs 3] [--hogs 2] [--logs DIR] [-- PYTEST_ARGS...]

Starts `--hogs` CPU-bound processes (a busy loop each, default: one per core, so every core
is taken), then runs `pytest -q` (the README's test command; more arguments after `--`) `--runs`
times in a row, and stops the hogs by their pids. For each run it prints the outcome line,
the wall time and the CPU time of pytest and its children (user + system), and keeps
pytest's whole output in `--logs DIR/run-N.log` (default: a new temporary directory), so a
failure can be read in full; it exits 0 only if every run passed. The suite must never fail
for load alone: a failure here is a flaky test, to be fixed (a lower bound with headroom, a
polled condition, an injected clock).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOG = "while True: pass"


def run_suite(args: list[str], log: Path) -> tuple[int, str, float, float]:
    """(exit code, pytest's last line, wall seconds, CPU seconds of pytest and children);
    pytest's whole output (stdout, then stderr) is written to `log`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log.write_text(done.stdout + ("\n--- stderr ---\n" + done.stderr if done.stderr else ""))
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    summary = "\n".join([*failures, lines[-1] if lines else "(no output)"])
    return done.returncode, summary, wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--logs", type=Path, help="where run-N.log go (default: a new temp dir)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    options = parser.parse_args()
    logs = options.logs or Path(tempfile.mkdtemp(prefix="suite-under-load-"))
    logs.mkdir(parents=True, exist_ok=True)
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(options.hogs)]
    print(f"{options.hogs} CPU-bound processes running (pids {[h.pid for h in hogs]})")
    results = []
    try:
        for number in range(1, options.runs + 1):
            log = logs / f"run-{number}.log"
            code, summary, wall, cpu = run_suite(options.pytest_args, log)
            results.append(code)
            print(f"run {number}: exit {code}, wall {wall:.1f} s, CPU {cpu:.1f} s, output in {log}")
            print(summary)
            sys.stdout.flush()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    passed = sum(1 for code in results if code == 0)
    print(f"{passed} of {len(results)} runs passed under load")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
