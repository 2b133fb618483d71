"""The real Toxiproxy server for the tests: found (or built with Go), started, stopped.

Where the binary comes from, in this order:

1. `TOXIPROXY_URL` set: a Toxiproxy already running there is used, nothing is started.
2. `toxiproxy-server` on `PATH` (a release download, a package).
3. `server` in `$(go env GOBIN)` or `$(go env GOPATH)/bin`: what
   `go install github.com/Shopify/toxiproxy/v2/cmd/server@<PINNED>` builds (`.ci/run`
   runs it). A binary of that name is only taken if `-version` says it is toxiproxy-server.
4. Go on `PATH` but no binary yet: the test session runs that `go install` once (about a
   minute; the Go module proxy must be reachable).

Otherwise the tests marked `toxiproxy` are deselected and the run ends with one line that
says how to enable them (tests/toxiproxy_report.py).

`start()` runs the binary on 127.0.0.1 only (its API's default host is `localhost`, which
may resolve to `::1` as well) on a free port, waits until `GET /version` answers, and
`stop()` ends it by its pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

PINNED = "v2.12.0"
"""Toxiproxy's release the tests and `.ci/run` build; its go.mod says `go 1.23.0`."""
PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/server"
INSTALL = f"go install {PACKAGE}@{PINNED}"
HOW_TO_ENABLE = (
    f"install Go and run `{INSTALL}` (.ci/run does), put toxiproxy-server on PATH,"
    " or set TOXIPROXY_URL; see docs/network-faults.md"
)


def _go_env(name: str) -> str:
    try:
        out = subprocess.run(
            ["go", "env", name], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _is_toxiproxy(path: Path) -> bool:
    try:
        out = subprocess.run(
            [str(path), "-version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return "toxiproxy-server" in out.stdout + out.stderr


def _go_bin_dirs() -> list[Path]:
    dirs = []
    gobin = _go_env("GOBIN")
    if gobin:
        dirs.append(Path(gobin))
    for gopath in _go_env("GOPATH").split(os.pathsep):
        if gopath:
            dirs.append(Path(gopath) / "bin")
    default = Path.home() / "go" / "bin"  # where `go install` puts it when go env is unset
    if default not in dirs:
        dirs.append(default)
    return dirs


def find_binary() -> Path | None:
    """The toxiproxy-server binary on this machine, or None."""
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        return Path(on_path)
    for directory in _go_bin_dirs():
        candidate = directory / "server"
        if candidate.is_file() and _is_toxiproxy(candidate):
            return candidate
    return None


def build_binary() -> tuple[Path | None, str]:
    """Run the pinned `go install` when Go is here; (binary, "") or (None, why not)."""
    if shutil.which("go") is None:
        return None, "no toxiproxy-server binary and no Go"
    try:
        done = subprocess.run(
            ["go", "install", f"{PACKAGE}@{PINNED}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"`{INSTALL}` failed: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"`{INSTALL}` failed: {last}"
    found = find_binary()
    return found, "" if found else f"`{INSTALL}` built no binary where Go puts it"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ToxiproxyServer:
    """A running toxiproxy-server process started by the tests."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 10.0) -> None:
        """End the process by its pid (SIGTERM, then SIGKILL after `timeout`)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start(binary: Path, log: IO[bytes], *, timeout: float = 20.0) -> ToxiproxyServer:
    """Start `binary` on 127.0.0.1 at a free port; return once its API answers."""
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between the check and the bind
        port = free_port()
        process = subprocess.Popen(
            [str(binary), "-host", "127.0.0.1", "-port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = ToxiproxyServer(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{server.url}/version", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError as exc:
                last_error = str(exc)
            time.sleep(0.02)
        server.stop()
        last_error = f"exit code {process.returncode}; {last_error}"
    raise RuntimeError(f"toxiproxy-server ({binary}) did not start: {last_error}")
