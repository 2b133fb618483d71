"""The hot paths as ratios against bare baselines, measured side by side in one run.

    python benchmarks/hotpaths.py            # everything (a few minutes)
    python benchmarks/hotpaths.py --quick    # shorter runs, fewer rounds
    python benchmarks/hotpaths.py --only mock,proxy --peers

Method (so the ratios survive a busy machine):
- every server runs in its own process, pinned to CPU 0 where the machine has two or more;
  the load generator (bench_proxy.py's keep-alive client) and a proxy's upstream run on CPU 1;
- A and B runs are interleaved (A B A B A B) and each figure is the median of its runs;
- the cost is CPU microseconds per request read from the server's own process
  (/proc/PID/stat utime + stime), printed alongside requests per second.
Baselines are bare: a raw ASGI app on the same uvicorn + httptools stack returning a fixed
JSON chat completion or a fixed stream of 24 SSE events (about what the mock sends).

Rows: mock vs bare (non-stream, stream); proxy pass-through vs its bare upstream's own CPU
(non-stream, stream) and requests/s vs direct; added time to first streamed byte (p50);
the proxy's line view (--view lines, stdout a pipe) vs --view quiet; in-process openai SDK
calls/s with aichaos.inject() vs respx for the same answer; `aichaos --version` / `--help`
wall time; memory: 1,000 open streams through the proxy and through the mock, RSS and open
fds back to their warm level.

Beside the proxy rows, its floor: a bare ASGI app forwarding with the proxy's own upstream
client and nothing else (benchmarks/peers.py), measured in the same interleaved runs.

Peers (--peers): llmock (PyPI `llmock`) beside the mock, mitmdump (PyPI `mitmproxy`, reverse
mode) beside the proxy, each in its own virtualenv under /tmp, never a project dependency;
a peer that cannot be installed or started is skipped with a printed line saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import bench_proxy as bp  # noqa: E402  (the shared load client and process helpers)
import peers  # noqa: E402  (llmock, and the proxy's floor)

TWO = (os.cpu_count() or 1) >= 2
SERVER_CPUS: set[int] | None = {0} if TWO else None
LOAD_CPUS: set[int] | None = {1} if TWO else None
MESSAGES = [{"role": "user", "content": "What is 2+2?"}]
CHAT = json.dumps({"model": "gpt-4o", "messages": MESSAGES})
STREAM = json.dumps({"model": "gpt-4o", "messages": MESSAGES, "stream": True})
EVENTS = 24
ANSWER = json.dumps(
    {
        "id": "chatcmpl-0123456789abcdef01234567",
        "object": "chat.completion",
        "created": 1764460800,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": " ".join(f"word{i}" for i in range(EVENTS - 2)),
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 22, "total_tokens": 34},
        "system_fingerprint": "fp_aichaos",
    },
    separators=(",", ":"),
).encode()  # fmt: skip  (compact, as the provider sends it: provider-wire-formats.md)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-0123456789abcdef01234567",
        "object": "chat.completion.chunk",
        "created": 1764460800,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_aichaos",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


SSE_EVENTS = (
    [_chunk({"role": "assistant", "content": ""})]
    + [_chunk({"content": f" word{i}"}) for i in range(EVENTS - 3)]
    + [_chunk({}, "stop"), b"data: [DONE]\n\n"]
)


# --- bare servers -------------------------------------------------------------------------
async def _read_body(receive: Any) -> None:
    while True:
        message = await receive()
        if not message.get("more_body"):
            return


async def bare_json(scope: Any, receive: Any, send: Any) -> None:
    """A fixed JSON chat completion, one body with a content-length."""
    if scope["type"] != "http":
        return
    await _read_body(receive)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


async def bare_sse(scope: Any, receive: Any, send: Any) -> None:
    """A fixed stream of 24 SSE events, one write each (as a streaming server sends them)."""
    if scope["type"] != "http":
        return
    await _read_body(receive)
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for event in SSE_EVENTS:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def bare_sse_once(scope: Any, receive: Any, send: Any) -> None:
    """The same 24 SSE events in one write (a stream whose events are all ready at once)."""
    if scope["type"] != "http":
        return
    await _read_body(receive)
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"".join(SSE_EVENTS)})


def serve(role: str, upstream: str | None = None) -> None:
    import socket

    import uvicorn

    from aichaos.mock import MockConfig, create_app

    apps: dict[str, Callable[[], Any]] = {
        "bare-json": lambda: bare_json,
        "bare-sse": lambda: bare_sse,
        "bare-sse-once": lambda: bare_sse_once,
        "bare-proxy": lambda: peers.bare_proxy(str(upstream)),
        "bare-proxy-httpx": lambda: peers.bare_proxy_httpx(str(upstream)),
        "mock": lambda: create_app(MockConfig(seed=1)),
        # ~24 tokens at 4/s: each stream stays open about 6 s (the memory soak)
        "mock-slow": lambda: create_app(MockConfig(seed=1, tokens_per_second=4.0)),
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"READY {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        apps[role](), http="httptools", log_level="warning", access_log=False, backlog=4096
    )
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def server(
    role: str, cpus: set[int] | None = SERVER_CPUS, upstream: str | None = None
) -> Iterator[tuple[int, str]]:
    command = [sys.executable, str(HERE), "--role", role]
    command += ["--upstream", upstream] if upstream else []
    ready: Callable[[str], str | None] = lambda line: (  # noqa: E731
        line.split()[1] if line.startswith("READY") else None
    )
    with bp.running(command, ready) as (pid, port):
        if cpus is not None:
            os.sched_setaffinity(pid, cpus)
        yield pid, f"http://127.0.0.1:{port}"


@contextmanager
def proxy(upstream_url: str, view: str = "quiet") -> Iterator[tuple[int, str]]:
    with bp.aichaos_proxy(upstream_url, view) as (pid, url):
        if SERVER_CPUS is not None:
            os.sched_setaffinity(pid, SERVER_CPUS)
        yield pid, url + "/bench"


# --- measuring ----------------------------------------------------------------------------
class Settings:
    def __init__(self, quick: bool, rounds: int | None = None) -> None:
        self.quick = quick
        self.rounds = rounds or (3 if quick else 5)
        self.seconds = 1.5 if quick else 3.0
        self.concurrency = 16
        self.calls = 600 if quick else 2000
        self.soak_seconds = 8.0 if quick else 20.0


def cpu_run(url: str, body: str, pids: list[int], s: Settings, vary: int = 0) -> dict[str, Any]:
    """One load run: requests/s and CPU us/request of each of `pids` (`vary`: that many
    distinct prompts in turn, see `bench_proxy.load_throughput`)."""
    before = [bp.cpu_seconds(pid) for pid in pids]
    result = bp.load(
        "throughput",
        cpus=LOAD_CPUS,
        url=url + "/v1/chat/completions",
        concurrency=s.concurrency,
        warmup=0.0,
        duration=s.seconds,
        body=body,
        vary=vary,
    )
    requests = max(1, result["ok"])
    cpu = [(bp.cpu_seconds(pid) - b) / requests * 1e6 for pid, b in zip(pids, before, strict=True)]
    return {"rps": result["rps"], "us": cpu, "errors": result["errors"]}


def interleaved(runs: dict[str, Callable[[], dict[str, Any]]], rounds: int) -> dict[str, Any]:
    """Each run once per round, in turn (A B A B ...); medians of every figure."""
    for run in runs.values():  # warm-up, not counted
        run()
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(run())
    medians: dict[str, Any] = {}
    for name, results in samples.items():
        pids = results[0]["us"]
        medians[name] = {
            "rps": statistics.median(r["rps"] for r in results),
            "us": [statistics.median(r["us"][i] for r in results) for i in range(len(pids))],
            "errors": sum(r["errors"] for r in results),
        }
    return medians


Row = tuple[str, str, str, float, str, bool | None]
ROWS: list[Row] = []


def row(path: str, ours: str, base: str, ratio: float, goal: str, met: bool | None) -> None:
    ROWS.append((path, ours, base, ratio, goal, met))
    verdict = "" if met is None else ("met" if met else "MISSED")
    print(f"  {path}: {ours} | {base} | {ratio:.2f}x | goal {goal} {verdict}", flush=True)


def _peer(stack: ExitStack, name: str, start: Callable[[], Any]) -> tuple[int, str] | None:
    """A peer's server pinned like ours, or None (with the reason printed) if it cannot run."""
    try:
        pid, url = stack.enter_context(start())
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        print(f"  peer {name} skipped: {exc}", flush=True)
        return None
    if SERVER_CPUS is not None:
        os.sched_setaffinity(pid, SERVER_CPUS)
    return pid, url


def bench_mock(s: Settings, with_peers: bool) -> None:
    print("== mock vs a bare ASGI app (same uvicorn + httptools) ==", flush=True)
    # The mock remembers its answers to its last 256 requests (a repeated request is not
    # parsed again): one prompt over and over always hits, so a row also sends a new prompt
    # each time (4,096 in turn), as a load of varied prompts does.
    for label, body, bare_role, goal, vary in (
        ("mock non-stream", CHAT, "bare-json", 2.0, 0),
        ("mock non-stream, a new prompt each request", CHAT, "bare-json", 2.0, 4096),
        (f"mock stream (~{EVENTS} events)", STREAM, "bare-sse", 1.5, 0),
    ):
        with ExitStack() as stack:
            bare_pid, bare_url = stack.enter_context(server(bare_role))
            mock_pid, mock_url = stack.enter_context(server("mock"))
            runs = {
                "bare": partial(cpu_run, bare_url, body, [bare_pid], s, vary),
                "mock": partial(cpu_run, mock_url, body, [mock_pid], s, vary),
            }
            if body is STREAM:  # the same events in one write: what the mock does unpaced
                once_pid, once_url = stack.enter_context(server("bare-sse-once"))
                runs["once"] = partial(cpu_run, once_url, body, [once_pid], s)
            llmock = _peer(stack, "llmock", peers.llmock) if with_peers and not vary else None
            if llmock is not None:
                runs["llmock"] = partial(cpu_run, llmock[1], body, [llmock[0]], s)
            m = interleaved(runs, s.rounds)
        mock_us, bare_us = m["mock"]["us"][0], m["bare"]["us"][0]
        row(
            label,
            f"{mock_us:.0f} us/req, {m['mock']['rps']:.0f} req/s",
            f"{bare_us:.0f} us/req, {m['bare']['rps']:.0f} req/s",
            mock_us / bare_us,
            f"<= {goal}x",
            mock_us / bare_us <= goal,
        )
        if "once" in m:
            once_us = m["once"]["us"][0]
            row(
                "  mock stream vs the bare stream in one write",
                f"{mock_us:.0f} us/req",
                f"{once_us:.0f} us/req, {m['once']['rps']:.0f} req/s",
                mock_us / once_us,
                "-",
                None,
            )
        if "llmock" in m:
            peer_us = m["llmock"]["us"][0]
            row(
                f"  peer llmock {'stream' if body is STREAM else 'non-stream'}",
                f"{peer_us:.0f} us/req, {m['llmock']['rps']:.0f} req/s",
                f"bare {bare_us:.0f} us/req",
                peer_us / bare_us,
                "-",
                None,
            )


def bench_proxy_cpu(s: Settings, with_peers: bool) -> None:
    print("== proxy pass-through vs its bare upstream's own CPU ==", flush=True)
    for label, body, bare_role in (
        ("proxy non-stream", CHAT, "bare-json"),
        ("proxy stream", STREAM, "bare-sse"),
    ):
        with ExitStack() as stack:
            up_pid, up_url = stack.enter_context(server(bare_role, LOAD_CPUS))
            px_pid, px_url = stack.enter_context(proxy(up_url))
            fl_pid, fl_url = stack.enter_context(server("bare-proxy", upstream=up_url))
            hx_pid, hx_url = stack.enter_context(server("bare-proxy-httpx", upstream=up_url))
            runs = {
                "direct": partial(cpu_run, up_url, body, [up_pid], s),
                "proxy": partial(cpu_run, px_url, body, [px_pid, up_pid], s),
                "floor": partial(cpu_run, fl_url, body, [fl_pid, up_pid], s),
                "httpx": partial(cpu_run, hx_url, body, [hx_pid, up_pid], s),
            }
            start = partial(bp.mitmdump, Path("/tmp/aichaos-bench-mitm"), up_url)
            mitm = _peer(stack, "mitmdump", start) if with_peers else None
            if mitm is not None:
                runs["mitmdump"] = partial(cpu_run, mitm[1], body, [mitm[0], up_pid], s)
            m = interleaved(runs, s.rounds)
        proxy_us, upstream_us = m["proxy"]["us"]
        ratio = proxy_us / upstream_us
        rate = m["proxy"]["rps"] / m["direct"]["rps"]
        row(
            label,
            f"{proxy_us:.0f} us/req, {m['proxy']['rps']:.0f} req/s ({rate:.2f}x direct)",
            f"upstream {upstream_us:.0f} us/req, direct {m['direct']['rps']:.0f} req/s",
            ratio,
            "<= 2.0x",
            ratio <= 2.0,
        )
        kind = "stream" if body is STREAM else "non-stream"
        for name, title in (
            ("floor", "floor: bare forwarding app"),
            ("httpx", "the same with httpx.AsyncClient"),
            ("mitmdump", "peer mitmdump"),
        ):
            if name in m:
                ours, theirs = m[name]["us"]
                row(
                    f"  {title} {kind}",
                    f"{ours:.0f} us/req, {m[name]['rps']:.0f} req/s",
                    f"upstream {theirs:.0f} us/req",
                    ours / theirs,
                    "-",
                    None,
                )


def bench_ttfb(s: Settings) -> None:
    """Low load: one client, streams one after another on one keep-alive connection, direct
    and through the proxy in turn; the first body byte of each stream is timed."""
    print("== added time to first streamed byte (p50, sequential streams) ==", flush=True)
    opts = {"streams": 100 if s.quick else 200, "events": 3, "gap": 0.002}
    with server("stream-stamped", LOAD_CPUS) as (_, up_url), proxy(up_url) as (_, px_url):
        direct: list[float] = []
        proxied: list[float] = []
        for _ in range(s.rounds):
            url = up_url + "/v1/chat/completions"
            direct += bp.load("stream", cpus=LOAD_CPUS, url=url, **opts)["ttfb"]
            url = px_url + "/v1/chat/completions"
            proxied += bp.load("stream", cpus=LOAD_CPUS, url=url, **opts)["ttfb"]
    d, p = statistics.median(direct), statistics.median(proxied)
    added = (p - d) * 1000
    row(
        "proxy added time to first byte p50",
        f"+{added:.3f} ms (proxied {p * 1000:.3f} ms)",
        f"direct {d * 1000:.3f} ms",
        p / d,
        "added < 0.3 ms",
        added < 0.3,
    )


def bench_view(s: Settings) -> None:
    print("== the proxy's line view (stdout a pipe) vs quiet ==", flush=True)
    with ExitStack() as stack:
        _, up_url = stack.enter_context(server("bare-json", LOAD_CPUS))
        quiet_pid, quiet_url = stack.enter_context(proxy(up_url, "quiet"))
        lines_pid, lines_url = stack.enter_context(proxy(up_url, "lines"))
        m = interleaved(
            {
                "quiet": partial(cpu_run, quiet_url, CHAT, [quiet_pid], s),
                "lines": partial(cpu_run, lines_url, CHAT, [lines_pid], s),
            },
            s.rounds,
        )
    quiet, lines = m["quiet"]["us"][0], m["lines"]["us"][0]
    share = (lines - quiet) / lines
    row(
        "proxy line view cost",
        f"lines {lines:.0f} us/req",
        f"quiet {quiet:.0f} us/req",
        lines / quiet,
        "< 10% of its CPU",
        share < 0.10,
    )
    print(f"    the view's share of the proxy's CPU: {share * 100:.0f}%", flush=True)


# --- in-process -----------------------------------------------------------------------------
def inprocess(s: Settings) -> None:
    """The openai SDK's calls per second with `aichaos.inject()` (the embedded mock answers)
    and with respx answering the same bytes, one call after another in this process.

    Fair by construction: respx is set up as its docs show (`respx.mock`, a route returning
    an `httpx.Response` made once; respx clones and pre-reads it per call) and answers the
    very body and headers the mock gives this request (captured once, before timing: the
    mock's ids differ per answer, not their length), so the SDK parses the same answer, the
    same number of events, on both sides. Both run the same SDK calls on plain httpx. Beside
    calls/s (wall), CPU microseconds per call (this thread's CPU time), which moves far less
    with the machine's load (the least of the rounds: interference only adds to it); the
    ratio is that of calls per CPU second, the same as calls/s' on an idle CPU."""
    print("== in-process: openai SDK calls/s, aichaos.inject() vs respx ==", flush=True)
    if SERVER_CPUS is not None:
        os.sched_setaffinity(0, SERVER_CPUS)
    import httpx
    import openai
    import respx

    import aichaos

    base = "https://api.openai.com/v1"

    def sdk() -> openai.AsyncOpenAI:
        # both sides on plain httpx: respx mocks httpx only (the SDK may default to httpx2)
        return openai.AsyncOpenAI(
            api_key="sk-bench",
            base_url=base,
            http_client=httpx.AsyncClient(),  # type: ignore[arg-type]
        )

    async def mock_answer(stream: bool) -> tuple[bytes, list[tuple[str, str]]]:
        """The mock's answer to the benchmark's request, as the SDK receives it."""
        with aichaos.inject(seed=1):
            async with httpx.AsyncClient() as client:
                body = {"model": "gpt-4o", "messages": MESSAGES, "stream": stream}
                response = await client.post(f"{base}/chat/completions", json=body)
                return response.content, list(response.headers.multi_items())

    def respx_route(answer: tuple[bytes, list[tuple[str, str]]]) -> Any:
        router = respx.mock(assert_all_called=False)
        content, headers = answer
        response = httpx.Response(200, content=content, headers=headers)
        router.post(f"{base}/chat/completions").mock(return_value=response)
        return router

    async def calls(client: openai.AsyncOpenAI, n: int, stream: bool) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.thread_time()
        for _ in range(n):
            if stream:
                events = await client.chat.completions.create(
                    model="gpt-4o",
                    messages=MESSAGES,
                    stream=True,  # type: ignore[arg-type]
                )
                async for _ in events:
                    pass
            else:
                await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
        wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
        return n / wall, cpu / n * 1e6

    async def one(kind: str, stream: bool, n: int, answer: Any) -> tuple[float, float]:
        if kind == "respx":
            with respx_route(answer):
                client = sdk()
                result = await calls(client, n, stream)
        else:
            with aichaos.inject(seed=1) as chaos:
                client = sdk()
                result = await calls(client, n, stream)
                chaos.recorder.clear()
        await client.close()
        return result

    for label, stream, goal in (("non-stream", False, 1.0), ("stream", True, 0.9)):
        answer = asyncio.run(mock_answer(stream))
        runs: dict[str, list[tuple[float, float]]] = {"respx": [], "aichaos": []}
        for kind in runs:
            asyncio.run(one(kind, stream, 100, answer))  # warm-up
        for _ in range(s.rounds):
            for kind in runs:
                runs[kind].append(asyncio.run(one(kind, stream, s.calls, answer)))
        rate = {k: statistics.median(r for r, _ in v) for k, v in runs.items()}
        # CPU per call: the least of the rounds (other processes on the CPU only add to it,
        # through its caches); the medians are printed below
        cpu = {k: min(c for _, c in v) for k, v in runs.items()}
        middle = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
        ratio = cpu["respx"] / cpu["aichaos"]
        row(
            f"in-process openai SDK {label}",
            f"{rate['aichaos']:.0f} calls/s, {cpu['aichaos']:.0f} us CPU/call",
            f"respx {rate['respx']:.0f} calls/s, {cpu['respx']:.0f} us CPU/call",
            ratio,
            f">= {goal}x",
            ratio >= goal,
        )
        print(
            f"    calls/s ratio (wall, load-sensitive): {rate['aichaos'] / rate['respx']:.2f}x;"
            f" median CPU/call {middle['aichaos']:.0f} vs {middle['respx']:.0f} us:"
            f" {middle['respx'] / middle['aichaos']:.2f}x",
            flush=True,
        )
        _transport_only(label, stream, answer, s, respx_route)


def _transport_only(
    label: str, stream: bool, answer: Any, s: Settings, respx_route: Callable[[Any], Any]
) -> None:
    """The same exchange without the SDK (80-90% of a call's CPU): httpx's send and body
    read, CPU microseconds per request, respx and aichaos interleaved, so that what each
    adds shows beside the other."""
    import httpx

    import aichaos

    url = "https://api.openai.com/v1/chat/completions"
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES, "stream": stream}).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

    async def sends(client: httpx.AsyncClient, n: int) -> float:
        cpu = time.thread_time()
        for _ in range(n):
            request = client.build_request("POST", url, content=body, headers=headers)
            response = await client.send(request, stream=True)
            async for _ in response.aiter_bytes():
                pass
            await response.aclose()
        return (time.thread_time() - cpu) / n * 1e6

    async def one(kind: str, n: int) -> float:
        with respx_route(answer) if kind == "respx" else aichaos.inject(seed=1):
            async with httpx.AsyncClient() as client:
                await sends(client, 50)
                return await sends(client, n)

    cpu: dict[str, list[float]] = {"respx": [], "aichaos": []}
    for _ in range(s.rounds):
        for kind in cpu:
            cpu[kind].append(asyncio.run(one(kind, s.calls)))
    ours, theirs = min(cpu["aichaos"]), min(cpu["respx"])
    row(
        f"  the same, httpx send without the SDK, {label}",
        f"{ours:.0f} us CPU/request",
        f"respx {theirs:.0f} us CPU/request",
        theirs / ours,
        "-",
        None,
    )


# --- CLI ------------------------------------------------------------------------------------
def bench_cli(s: Settings) -> None:
    print("== CLI wall time (median) ==", flush=True)
    runs = 5 if s.quick else 11
    commands = {
        "python -c pass": ["-c", "pass"],
        "aichaos --version": ["-m", "aichaos", "--version"],
        "aichaos --help": ["-m", "aichaos", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, args in commands.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, *args], capture_output=True, check=True)
            times[name].append(time.perf_counter() - started)
    interpreter = statistics.median(times["python -c pass"])
    for name in ("aichaos --version", "aichaos --help"):
        wall = statistics.median(times[name])
        row(
            name,
            f"{wall * 1000:.0f} ms",
            f"python -c pass {interpreter * 1000:.0f} ms",
            wall / interpreter,
            "< 60 ms",
            wall < 0.060,
        )


# --- memory ---------------------------------------------------------------------------------
def _levels(pid: int) -> tuple[float, int]:
    return bp.rss_mb(pid), bp.open_fds(pid)


def _hold(url: str, streams: int, seconds: float, body: dict[str, Any] | None, pid: int) -> Any:
    """`streams` clients streaming for `seconds`; returns (peak RSS, peak fds, result)."""
    peak: dict[str, float] = {"rss": 0.0, "fds": 0}
    if body is None:  # the stamped upstream: 10 events a second apart
        return bp._soak_load(url, streams, seconds, pid, peak), peak
    command = [sys.executable, str(bp.HERE), "--role", "load", "--mode", "throughput"]
    options = {"url": url, "concurrency": streams, "warmup": 0.0, "duration": seconds}
    options["body"] = json.dumps(body)
    process = subprocess.Popen([*command, "--options", json.dumps(options)], stdout=subprocess.PIPE)
    while process.poll() is None:
        peak["rss"] = max(peak["rss"], bp.rss_mb(pid))
        peak["fds"] = max(peak["fds"], bp.open_fds(pid))
        time.sleep(0.5)
    return json.loads(process.communicate()[0]), peak


def bench_memory(s: Settings) -> None:
    print("== memory: 1,000 open streams, RSS and open fds back to the warm level ==", flush=True)
    streams, settle = 1000, 12.0  # settle: pool expiry (4 s) + the proxy's idle trim (5 s)

    @contextmanager
    def via_proxy() -> Iterator[tuple[int, str, dict[str, Any] | None]]:
        with server("stream", LOAD_CPUS) as (_, up_url), proxy(up_url) as (pid, url):
            yield pid, url + "/v1/chat/completions", None

    @contextmanager
    def via_mock() -> Iterator[tuple[int, str, dict[str, Any] | None]]:
        with server("mock-slow") as (pid, url):
            yield pid, url + "/v1/chat/completions", json.loads(STREAM)

    for label, target in (("proxy", via_proxy), ("mock", via_mock)):
        with target() as (pid, url, body):
            _hold(url, 20, 2.0, body, pid)
            time.sleep(settle)
            cold = _levels(pid)
            _hold(url, streams, 5.0, body, pid)  # the warm level: after one burst at full scale
            time.sleep(settle)
            warm = _levels(pid)
            result, peak = _hold(url, streams, s.soak_seconds, body, pid)
            time.sleep(settle)
            after = _levels(pid)
        grew = after[0] - warm[0]
        row(
            f"{label}: {streams} open streams",
            f"RSS after {after[0]:.1f} MB ({grew:+.1f}), fds after {after[1]}",
            f"warm {warm[0]:.1f} MB / {warm[1]} fds (cold {cold[0]:.1f} MB / {cold[1]})",
            after[0] / warm[0],
            "back to warm (+-5%)",
            grew <= 0.05 * warm[0] and after[1] <= warm[1],  # the allocator keeps a little
        )
        print(
            f"    peak {peak['rss']:.1f} MB / {peak['fds']:.0f} fds, errors {result.get('errors')}",
            flush=True,
        )


# --- main -----------------------------------------------------------------------------------
SECTIONS = ("mock", "proxy", "ttfb", "view", "inprocess", "cli", "memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter runs, 3 rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3 quick, 5)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument(
        "--peers", action="store_true", help="add llmock and mitmdump (own virtualenvs in /tmp)"
    )
    args = parser.parse_args()
    if args.role in ("stream", "stream-stamped"):
        bp.serve_role("stream")
        return
    if args.role:
        serve(args.role, args.upstream)
        return
    s = Settings(args.quick, args.rounds)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"hotpaths on {os.cpu_count()} CPUs (servers on {SERVER_CPUS}, load on {LOAD_CPUS}),"
        f" Python {sys.version.split()[0]}, load average {' '.join(load)}",
        flush=True,
    )
    only = set(args.only.split(","))
    jobs: dict[str, Callable[[], None]] = {
        "mock": lambda: bench_mock(s, args.peers),
        "proxy": lambda: bench_proxy_cpu(s, args.peers),
        "ttfb": lambda: bench_ttfb(s),
        "view": lambda: bench_view(s),
        "inprocess": lambda: inprocess(s),
        "cli": lambda: bench_cli(s),
        "memory": lambda: bench_memory(s),
    }
    for name in SECTIONS:
        if name in only:
            jobs[name]()
    if args.peers is False:
        print("(peers: run with --peers to add llmock and mitmdump)")
    print("\n| path | aichaos | bare baseline | ratio | goal | |")
    print("|---|---|---|---|---|---|")
    for path, ours, base, ratio, goal, met in ROWS:
        verdict = "" if met is None else ("met" if met else "**missed**")
        print(f"| {path.strip()} | {ours} | {base} | {ratio:.2f}x | {goal} | {verdict} |")


if __name__ == "__main__":
    main()
