"""`aichaos mock`: serve the embedded mock model backend over HTTP."""

from __future__ import annotations

import argparse

from aichaos.commands.options import duration, port, positive_number, seed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8900, help="port (default 8900; 0 = any)")
    parser.add_argument("--seed", type=seed, default=0, help="seed for deterministic replies")
    parser.add_argument(
        "--latency",
        type=duration,
        default=0.0,
        metavar="DURATION",
        help="wait before each answer: 200ms, 2s (default 0)",
    )
    parser.add_argument(
        "--ttft",
        type=duration,
        default=0.0,
        metavar="DURATION",
        help="wait before the first token: 200ms, 2s (default 0)",
    )
    parser.add_argument(
        "--tokens-per-second", type=positive_number, default=None, help="stream pacing"
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from aichaos.mock import MockConfig, create_app

    config = MockConfig(
        seed=args.seed,
        latency=args.latency,
        ttft=args.ttft,
        tokens_per_second=args.tokens_per_second,
    )
    from aichaos.providers import PROVIDERS

    base = f"http://{args.host}:{args.port}"
    print(f"aichaos mock backend on {base}  (Ctrl-C to stop); point an SDK at it with:")
    for provider in PROVIDERS.values():
        sdk = provider.sdk_env
        if sdk is not None:
            print(f"  {provider.name:<10} {sdk.base_url}={base}{sdk.base_path}")
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0
