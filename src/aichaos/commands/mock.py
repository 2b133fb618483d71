"""`aichaos mock`: serve the embedded mock model backend over HTTP."""

from __future__ import annotations

import argparse
import sys

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
    parser.add_argument(
        "--replay",
        metavar="DIR",
        default=None,
        help="answer from the cassette in DIR first (see docs/record-replay.md)",
    )
    parser.add_argument(
        "--on-miss",
        choices=("error", "mock"),
        default=None,
        help="with --replay, a request the cassette does not hold: the provider's 404 naming"
        " the closest recorded request (error, the default) or the mock's answer",
    )
    parser.add_argument(
        "--speed",
        type=positive_number,
        default=None,
        help="with --replay, play recorded timing this many times faster (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    given = [flag for flag in ("on_miss", "speed") if getattr(args, flag) is not None]
    if given and args.replay is None:
        flags = " and ".join("--" + flag.replace("_", "-") for flag in given)
        print(f"aichaos mock: {flags} only apply with --replay DIR", file=sys.stderr)
        return 2

    import uvicorn

    from aichaos.mock import MockConfig, create_app
    from aichaos.proxy.server import bind_socket

    config = MockConfig(
        seed=args.seed,
        latency=args.latency,
        ttft=args.ttft,
        tokens_per_second=args.tokens_per_second,
    )
    from aichaos.providers import PROVIDERS

    replay = None
    if args.replay is not None:
        from pathlib import Path

        from aichaos.cassette import CassetteError, ReplaySource

        try:
            replay = ReplaySource(Path(args.replay), speed=args.speed or 1.0)
        except CassetteError as exc:
            print(f"aichaos mock: {exc}", file=sys.stderr)
            return 2

    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"aichaos mock: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{sock.getsockname()[1]}"  # the port bound (for --port 0 too)
    source = (
        ""
        if replay is None
        else f", replaying {len(replay.matcher)} exchange(s) from {args.replay}"
    )
    print(f"aichaos mock backend on {base}{source}  (Ctrl-C to stop); point an SDK at it with:")
    for provider in PROVIDERS.values():
        sdk = provider.sdk_env
        if sdk is not None:
            print(f"  {provider.name:<10} {sdk.base_url}={base}{sdk.base_path}")
    sys.stdout.flush()
    app = create_app(config, replay, args.on_miss or "error")
    # no access log: uvicorn would format every request for a logger that drops it
    server_config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(server_config).run(sockets=[sock])
    return 0
