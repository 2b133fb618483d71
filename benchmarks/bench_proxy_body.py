"""The proxy's memory for one large request body: streamed (no fault may act) and buffered
(a fault armed on the backend, so the exchange reads the whole body first).

`aichaos proxy` runs in its own process; the upstream (reads and discards the body, answers
its length) and the client (sends SIZE bytes from one reused 1 MiB buffer) run here, so the
proxy's peak resident memory (VmHWM) is its own.

    python benchmarks/bench_proxy_body.py               # 300 MB, both modes
    python benchmarks/bench_proxy_body.py --mb 100 --only streamed
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxy import running

_CHUNK = 1024 * 1024


class _Discard(socketserver.BaseRequestHandler):
    """An HTTP/1.1 upstream that reads a content-length body, discards it, answers its size."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        got = len(rest)
        while got < length:
            piece = sock.recv(_CHUNK)
            if not piece:
                return
            got += len(piece)
        body = json.dumps({"received": got}).encode()
        sock.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )


def _vm(pid: int, key: str) -> int:
    """A `/proc/PID/status` memory figure in MiB (VmHWM: the peak resident size)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(key)


def _post(url: str, size: int) -> bytes:
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    buffer = b"x" * _CHUNK
    with socket.create_connection((name, int(port))) as sock:
        sock.sendall(
            f"POST /{rest} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n"
            f"content-length: {size}\r\n\r\n".encode()
        )
        sent = 0
        while sent < size:
            piece = buffer[: min(_CHUNK, size - sent)]
            sock.sendall(piece)
            sent += len(piece)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def measure(size: int, upstream: str, buffered: bool) -> dict[str, float | int | str]:
    command = [sys.executable, "-m", "aichaos", "proxy", "--port", "0", "--view", "quiet"]
    command += ["--upstream", f"bench=openai@{upstream}", "--max-body", f"{size + _CHUNK}B"]
    ready = running(
        command, lambda line: line.split()[3] if line.startswith("aichaos proxy on") else None
    )
    with ready as (pid, base):
        if buffered:  # an armed fault may act on the model: the exchange reads the body whole
            fault = json.dumps({"kind": "latency", "delay": "1ms"}).encode()
            request = urllib.request.Request(
                f"{base}/_aichaos/faults", fault, {"content-type": "application/json"}
            )
            urllib.request.urlopen(request).read()
        _post(f"{base}/bench/v1/chat/completions", 1000)  # warm: imports, first exchange
        before = _vm(pid, "VmHWM")
        started = time.perf_counter()
        answer = _post(f"{base}/bench/v1/chat/completions", size)
        seconds = time.perf_counter() - started
        status = answer.split(b" ", 2)[1].decode()
        return {
            "mode": "buffered" if buffered else "streamed",
            "status": status,
            "peak_mib_before": before,
            "peak_mib_after": _vm(pid, "VmHWM"),
            "seconds": round(seconds, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="body size in MB (10^6 bytes)")
    parser.add_argument("--only", choices=["streamed", "buffered"])
    args = parser.parse_args()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Discard)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    size = args.mb * 1_000_000
    try:
        for buffered in (False, True):
            if args.only and args.only != ("buffered" if buffered else "streamed"):
                continue
            print(json.dumps({"body_mb": args.mb, **measure(size, upstream, buffered)}))
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
