"""`aichaos demo`: a fault hitting a real SDK call against the embedded mock, offline."""

from __future__ import annotations

import argparse

from aichaos.commands.options import seed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed, default=7)


def run(args: argparse.Namespace) -> int:
    try:
        import openai
    except ImportError:
        print("aichaos demo needs the openai SDK: pip install 'aichaos[examples]'")
        return 2
    from rich.console import Console
    from rich.table import Table

    import aichaos

    console = Console()
    faults = [
        {"kind": "rate_limit", "backend": "openai", "first": 2, "retry_after": "300ms"},
        {"kind": "outage", "backend": "openai", "window": {"start": "0s"}, "every": 4},
    ]
    client = openai.OpenAI(api_key="sk-demo-not-a-real-key")
    with aichaos.inject(faults, seed=args.seed) as chaos:
        for n in range(4):
            with aichaos.call_scope(f"call-{n + 1}"):
                try:
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello {n}"}]
                    )
                    outcome = f"[green]ok[/] {reply.choices[0].message.content!r}"
                except openai.APIError as exc:
                    outcome = f"[red]{type(exc).__name__}[/] {exc}"
            console.print(f"call-{n + 1}: {outcome}")
    table = Table(title="Upstream attempts (the SDK's retries included)")
    for column in ("call", "backend", "fault", "status", "ms"):
        table.add_column(column)
    for attempt in chaos.attempts:
        table.add_row(
            attempt.call_id or "-",
            attempt.backend,
            ", ".join(attempt.faults) or "-",
            str(attempt.status or attempt.error),
            f"{(attempt.duration or 0) * 1000:.1f}",
        )
    console.print(table)
    return 0
