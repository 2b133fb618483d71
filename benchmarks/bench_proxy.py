"""The chaos proxy's cost: throughput, added latency, streaming delays, and a soak.

Every server runs in its own process (the mock upstream, `aichaos proxy`, mitmdump) and
so does the load generator: a minimal asyncio HTTP/1.1 client with keep-alive, cheap
enough that the servers, not the client, are measured. Direct and proxied runs use the
same client and the same upstream, so the ratios are fair on a small machine.

    python benchmarks/bench_proxy.py                       # everything, soak 60 s
    python benchmarks/bench_proxy.py --only throughput --duration 8
    python benchmarks/bench_proxy.py --only soak --soak-seconds 60 --soak-streams 1000

Measurements:
  throughput  non-streaming chat completions from the mock, 50 concurrent clients:
              direct to the mock, through aichaos proxy, through mitmdump in reverse mode
  latency     one client, sequential requests: added p50/p99 = proxied - direct
  stream      time to first byte and per-event forwarding delay; events carry the
              upstream's CLOCK_MONOTONIC send time, so the delay is measured per event
  soak        N concurrent streams for S seconds through the proxy: errors, and the
              proxy's memory and open file descriptors before, during and after

mitmproxy is never a project dependency: it is installed into its own virtualenv
(default /tmp/aichaos-bench-mitm) on first use:
    python3 -m venv /tmp/aichaos-bench-mitm && /tmp/aichaos-bench-mitm/bin/pip install mitmproxy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve()
CHAT = json.dumps(
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is 2+2?"}]}
).encode()
_STAMP = re.compile(rb'"t": ?([0-9.]+)')


# --- the load generator's HTTP/1.1 client -------------------------------------------------
def build_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    head = (
        f"POST /{path} HTTP/1.1\r\nhost: {hostport}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer sk-bench\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return host, int(port or 80), head.encode() + body


class Connection:
    """One keep-alive connection; `exchange` sends a request and reads the whole answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(
        self, raw: bytes, on_chunk: Callable[[bytes], None] | None = None
    ) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        size = 0
        if b"transfer-encoding: chunked" in lower:
            while True:
                line = await reader.readuntil(b"\r\n")
                length = int(line.split(b";", 1)[0], 16)
                if length == 0:
                    await reader.readuntil(b"\r\n")
                    break
                data = await reader.readexactly(length + 2)
                size += length
                if on_chunk is not None:
                    on_chunk(data[:-2])
        else:
            match = re.search(rb"content-length: *(\d+)", lower)
            length = int(match.group(1)) if match else 0
            data = await reader.readexactly(length)
            size = length
            if on_chunk is not None and data:
                on_chunk(data)
        if b"connection: close" in lower:
            await self.close()
        return status, size

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def load_throughput(
    url: str,
    concurrency: int,
    warmup: float,
    duration: float,
    body: str | None = None,
    vary: int = 0,
) -> Any:
    """Requests/s of `concurrency` keep-alive clients sending `body` (default CHAT); with
    `vary`, each request's last user message ends with one of `vary` numbers in turn, so
    a server that remembers recent requests sees each one anew."""
    text = CHAT if body is None else body.encode()
    host, port, raw = build_request(url, text)
    raws = [raw]
    if vary:
        marker = text.rindex(b'"}')  # the end of the last message's content
        raws = [
            build_request(url, text[:marker] + b" #%d" % n + text[marker:])[2] for n in range(vary)
        ]
    sent = 0
    counts = {"ok": 0, "errors": 0}
    measuring = False
    stop = False

    async def client() -> None:
        nonlocal sent
        conn = Connection(host, port)
        while not stop:
            raw = raws[sent % len(raws)]
            sent += 1
            try:
                status, _ = await conn.exchange(raw)
                ok = status == 200
            except (OSError, asyncio.IncompleteReadError):
                ok = False
                await conn.close()
            if measuring:
                counts["ok" if ok else "errors"] += 1
        await conn.close()

    tasks = [asyncio.ensure_future(client()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    started = time.perf_counter()
    await asyncio.sleep(duration)
    measuring = False
    elapsed = time.perf_counter() - started
    stop = True
    await asyncio.gather(*tasks)
    return {"rps": counts["ok"] / elapsed, **counts}


async def load_latency(url: str, requests: int) -> Any:
    host, port, raw = build_request(url, CHAT)
    conn = Connection(host, port)
    for _ in range(200):  # warm-up: connections, caches
        await conn.exchange(raw)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        status, _ = await conn.exchange(raw)
        samples.append(time.perf_counter() - started)
        assert status == 200
    await conn.close()
    return {"samples": samples}


def stream_body(events: int, gap: float) -> bytes:
    return json.dumps({"model": "gpt-4o", "stream": True, "events": events, "gap": gap}).encode()


async def load_stream(url: str, streams: int, events: int, gap: float) -> Any:
    host, port, raw = build_request(url, stream_body(events, gap))
    conn = Connection(host, port)
    ttfb: list[float] = []
    delays: list[float] = []
    for index in range(streams + 5):
        started = time.monotonic()
        first: list[float] = []

        def on_chunk(data: bytes, first: list[float] = first) -> None:
            now = time.monotonic()
            if not first:
                first.append(now)
            for stamp in _STAMP.findall(data):
                delays.append(now - float(stamp))

        if index == 5:
            delays.clear()  # the first streams warm up
        status, _ = await conn.exchange(raw, on_chunk)
        assert status == 200
        if index >= 5:
            ttfb.append(first[0] - started)
    await conn.close()
    return {"ttfb": ttfb, "delays": delays}


async def load_soak(url: str, streams: int, seconds: float, events: int, gap: float) -> Any:
    host, port, raw = build_request(url, stream_body(events, gap))
    result = {"completed": 0, "errors": 0, "events": 0, "max_delay": 0.0, "peak_open": 0}
    open_now = 0
    deadline = time.monotonic() + seconds
    error_kinds: dict[str, int] = {}

    def on_chunk(data: bytes) -> None:
        now = time.monotonic()
        for stamp in _STAMP.findall(data):
            result["events"] += 1
            result["max_delay"] = max(result["max_delay"], now - float(stamp))

    async def client(index: int) -> None:
        nonlocal open_now
        await asyncio.sleep(index * 0.002)  # ramp up over ~2 s
        conn = Connection(host, port)
        while time.monotonic() < deadline:
            open_now += 1
            result["peak_open"] = max(result["peak_open"], open_now)
            try:
                status, _ = await conn.exchange(raw, on_chunk)
                if status == 200:
                    result["completed"] += 1
                else:
                    result["errors"] += 1
                    error_kinds[str(status)] = error_kinds.get(str(status), 0) + 1
            except (OSError, asyncio.IncompleteReadError) as exc:
                result["errors"] += 1
                error_kinds[type(exc).__name__] = error_kinds.get(type(exc).__name__, 0) + 1
                await conn.close()
            finally:
                open_now -= 1
        await conn.close()

    await asyncio.gather(*(client(i) for i in range(streams)))
    return {**result, "error_kinds": error_kinds}


# --- a timestamping SSE upstream --------------------------------------------------------
class StampedStreams:
    """Streams `events` chat chunks `gap` seconds apart, each carrying its send time."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        ask = json.loads(body or b"{}")
        events, gap = int(ask.get("events", 10)), float(ask.get("gap", 0.01))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for index in range(events):
            if gap:
                await asyncio.sleep(gap)
            chunk = {
                "id": "chatcmpl-b",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {"content": f"w{index} "}}],
                "t": time.monotonic(),
            }
            data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def serve_role(role: str) -> None:
    import uvicorn

    from aichaos.mock import MockConfig, create_app

    app: Any = create_app(MockConfig(seed=1)) if role == "mock" else StampedStreams()
    # proto=TCP: asyncio sets TCP_NODELAY on accepted sockets only when the listener says TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"READY {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=4096)
    uvicorn.Server(config).run(sockets=[sock])


# --- orchestration ---
def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


# --- orchestration --------------------------------------------------------------------------
def _spawn(
    command: list[str], ready: Callable[[str], str | None]
) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = ready(line)
        if found:
            # keep reading: a server that prints per request (the line view) must never
            # block on a full pipe
            threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
            return process, found
    raise RuntimeError(f"{command[:3]} did not start")


@contextmanager
def running(command: list[str], ready: Callable[[str], str | None]) -> Iterator[tuple[int, str]]:
    process, found = _spawn(command, ready)
    try:
        yield process.pid, found
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def upstream(role: str) -> Any:
    command = [sys.executable, str(HERE), "--role", role]
    return running(command, lambda line: line.split()[1] if line.startswith("READY") else None)


def aichaos_proxy(upstream_url: str, view: str = "quiet") -> Any:
    command = [sys.executable, "-m", "aichaos", "proxy", "--port", "0", "--view", view]
    command += ["--upstream", f"bench=openai@{upstream_url}"]
    return running(
        command,
        lambda line: line.split()[3] if line.startswith("aichaos proxy on") else None,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mitmdump(venv: Path, upstream_url: str) -> Any:
    binary = venv / "bin" / "mitmdump"
    if not binary.exists():
        print(f"installing mitmproxy into {venv} (its own virtualenv) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "mitmproxy"], check=True)
    port = free_port()
    command = [str(binary), "--mode", f"reverse:{upstream_url}", "--listen-host", "127.0.0.1"]
    command += ["--listen-port", str(port), "-q", "--set", "connection_strategy=lazy"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("mitmdump did not start") from None
            time.sleep(0.1)

    @contextmanager
    def handle() -> Iterator[tuple[int, str]]:
        try:
            yield process.pid, f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)

    return handle()


def load(mode: str, cpus: set[int] | None = None, **options: Any) -> Any:
    """Run the load generator in its own process (on `cpus` if given) and return its
    JSON result."""
    command = [sys.executable, str(HERE), "--role", "load", "--mode", mode]
    command += ["--options", json.dumps(options)]
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    done = subprocess.run(command, capture_output=True, text=True, check=True, preexec_fn=pin)
    return json.loads(done.stdout)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


# --- the measurements -----------------------------------------------------------------------
def bench_throughput(args: argparse.Namespace) -> None:
    print(f"\n== throughput: non-streaming chat completions, {args.concurrency} clients ==")
    options = {"concurrency": args.concurrency, "warmup": 2.0, "duration": args.duration}
    with upstream("mock") as (mock_pid, mock_port):
        mock_url = f"http://127.0.0.1:{mock_port}"
        results: dict[str, Any] = {}
        cpu_before = cpu_seconds(mock_pid)
        results["direct"] = load("throughput", url=mock_url + "/v1/chat/completions", **options)
        mock_cpu = cpu_seconds(mock_pid) - cpu_before
        with aichaos_proxy(mock_url) as (proxy_pid, proxy_url):
            before = cpu_seconds(proxy_pid)
            url = proxy_url + "/bench/v1/chat/completions"
            results["aichaos proxy"] = load("throughput", url=url, **options)
            proxy_cpu = cpu_seconds(proxy_pid) - before
        if not args.skip_mitm:
            with mitmdump(Path(args.mitm_venv), mock_url) as (_, mitm_url):
                url = mitm_url + "/v1/chat/completions"
                results["mitmdump reverse"] = load("throughput", url=url, **options)
    for name, result in results.items():
        print(f"  {name:<18} {result['rps']:8.0f} req/s   errors {result['errors']}")
    direct, proxied = results["direct"]["rps"], results["aichaos proxy"]["rps"]
    total = options["warmup"] + options["duration"]
    print(f"  proxy / direct     {proxied / direct:8.2f}x  (target >= 0.5x)")
    if "mitmdump reverse" in results:
        print(f"  proxy / mitmdump   {proxied / results['mitmdump reverse']['rps']:8.2f}x  (>= 2x)")
    per_request = proxy_cpu / max(1.0, proxied * total)
    print(f"  CPU: proxy {per_request * 1e6:.0f} us/request;", end=" ")
    print(f"mock {mock_cpu / max(1.0, direct * total) * 1e6:.0f} us/request")


def bench_latency(args: argparse.Namespace) -> None:
    print(f"\n== added latency at low load: 1 client, {args.latency_requests} requests ==")
    with upstream("mock") as (_, mock_port):
        mock_url = f"http://127.0.0.1:{mock_port}"
        direct = load("latency", url=mock_url + "/v1/chat/completions", n=args.latency_requests)
        with aichaos_proxy(mock_url) as (_, proxy_url):
            url = proxy_url + "/bench/v1/chat/completions"
            proxied = load("latency", url=url, n=args.latency_requests)
    for p in (50, 99):
        d, q = pct(direct["samples"], p), pct(proxied["samples"], p)
        target = "< 1 ms" if p == 50 else "< 5 ms"
        print(f"  p{p}: direct {ms(d)}  proxied {ms(q)}  added {ms(q - d)}  (target {target})")


def bench_stream(args: argparse.Namespace) -> None:
    print("\n== streaming: 100 streams of 20 events, 10 ms apart ==")
    with upstream("stream") as (_, port):
        stream_url = f"http://127.0.0.1:{port}"
        opts = {"streams": 100, "events": 20, "gap": 0.01}
        direct = load("stream", url=stream_url + "/v1/chat/completions", **opts)
        with aichaos_proxy(stream_url) as (_, proxy_url):
            proxied = load("stream", url=proxy_url + "/bench/v1/chat/completions", **opts)
    for name, key in (("time to first byte", "ttfb"), ("per-event delay", "delays")):
        for p in (50, 99):
            d, q = pct(direct[key], p), pct(proxied[key], p)
            print(f"  {name} p{p}: direct {ms(d)}  proxied {ms(q)}  added {ms(q - d)}")
    print(f"  per-event delay through the proxy, max: {ms(max(proxied['delays']))}")
    print("  targets: added time to first byte < 2 ms; each event forwarded within 1 ms")


def _soak_load(url: str, streams: int, seconds: float, pid: int, peak: dict[str, float]) -> Any:
    command = [sys.executable, str(HERE), "--role", "load", "--mode", "soak"]
    options = {"url": url, "streams": streams, "seconds": seconds, "events": 10, "gap": 1.0}
    process = subprocess.Popen([*command, "--options", json.dumps(options)], stdout=subprocess.PIPE)
    while process.poll() is None:
        peak["rss"] = max(peak["rss"], rss_mb(pid))
        peak["fds"] = max(peak["fds"], open_fds(pid))
        time.sleep(0.5)
    return json.loads(process.communicate()[0])


def bench_soak(args: argparse.Namespace) -> None:
    """Cold level (idle, after a few requests), warm level (after a short burst at full
    scale: what the allocator keeps once it has served that many connections), the soak,
    then the level once idle upstream connections expired (4 s) and memory was released."""
    streams, seconds = args.soak_streams, args.soak_seconds
    print(f"\n== soak: {streams} concurrent streams through the proxy for {seconds:g} s ==")
    settle = 12.0  # pool expiry (4 s) + the proxy's idle memory release (every 5 s)
    with upstream("stream") as (_, port):
        stream_url = f"http://127.0.0.1:{port}"
        with aichaos_proxy(stream_url) as (pid, proxy_url):
            url = proxy_url + "/bench/v1/chat/completions"
            load("stream", url=url, streams=20, events=5, gap=0.0)
            time.sleep(settle)
            cold = (rss_mb(pid), open_fds(pid))
            peak: dict[str, float] = {"rss": cold[0], "fds": cold[1]}
            _soak_load(url, streams, 5.0, pid, peak)
            time.sleep(settle)
            warm = (rss_mb(pid), open_fds(pid))
            result = _soak_load(url, streams, seconds, pid, peak)
            time.sleep(settle)
            after = (rss_mb(pid), open_fds(pid))
            stats = json.loads(
                subprocess.run(
                    ["curl", "-s", proxy_url + "/_aichaos/stats"], capture_output=True, text=True
                ).stdout
                or "{}"
            )
    print(
        f"  streams completed {result['completed']}, events {result['events']},"
        f" errors {result['errors']} {result['error_kinds'] or ''}"
    )
    print(
        f"  peak concurrent streams {result['peak_open']},"
        f" max event delay {ms(result['max_delay'])}"
    )
    print(
        f"  proxy RSS: cold {cold[0]:.1f} MB, warm {warm[0]:.1f} MB, peak {peak['rss']:.1f} MB,"
        f" after {after[0]:.1f} MB ({after[0] - warm[0]:+.1f} MB vs warm)"
    )
    print(f"  proxy fds: cold {cold[1]}, warm {warm[1]}, peak {peak['fds']:.0f}, after {after[1]}")
    print(f"  proxy in-flight exchanges after: {stats.get('inflight')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=["mock", "stream", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="throughput,latency,stream,soak")
    parser.add_argument("--duration", type=float, default=8.0, help="throughput seconds per run")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency-requests", type=int, default=3000)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--soak-streams", type=int, default=1000)
    parser.add_argument("--skip-mitm", action="store_true")
    parser.add_argument("--mitm-venv", default="/tmp/aichaos-bench-mitm")
    args = parser.parse_args()
    if args.role in ("mock", "stream"):
        serve_role(args.role)
        return
    if args.role == "load":
        opts = json.loads(args.options)
        jobs = {
            "throughput": lambda: load_throughput(
                opts["url"],
                opts["concurrency"],
                opts["warmup"],
                opts["duration"],
                opts.get("body"),
                opts.get("vary", 0),
            ),
            "latency": lambda: load_latency(opts["url"], opts["n"]),
            "stream": lambda: load_stream(
                opts["url"], opts["streams"], opts["events"], opts["gap"]
            ),
            "soak": lambda: load_soak(
                opts["url"], opts["streams"], opts["seconds"], opts["events"], opts["gap"]
            ),
        }
        print(json.dumps(asyncio.run(jobs[args.mode]())))
        return
    print(f"bench_proxy on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    only = set(args.only.split(","))
    for name, bench in (
        ("throughput", bench_throughput),
        ("latency", bench_latency),
        ("stream", bench_stream),
        ("soak", bench_soak),
    ):
        if name in only:
            bench(args)


if __name__ == "__main__":
    main()
