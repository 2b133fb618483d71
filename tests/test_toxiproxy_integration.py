"""Network faults against a REAL Toxiproxy: the toxic lifecycle and its effect on traffic.

The tests marked `toxiproxy` use the session's real toxiproxy-server (the `toxiproxy_url`
fixture in tests/conftest.py starts it; tests/toxiproxy_server.py finds or builds it), or
the one at `TOXIPROXY_URL` when set. With neither a binary nor Go they are deselected and
the run ends with one line saying how to enable them (tests/toxiproxy_report.py); the
unmarked tests here check that this reporting is in place.

Toxiproxy must reach the small HTTP server these tests start. By default it listens on
127.0.0.1. When Toxiproxy runs elsewhere (`TOXIPROXY_URL` pointing at the compose stack's
`toxiproxy` service), set `TOXIPROXY_UPSTREAM_HOST` to the address Toxiproxy reaches this
machine at (`auto`: this host's own address); the server then listens on all interfaces.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from aichaos.faults.base import parse_fault
from aichaos.faults.kinds.network import normalize_toxiproxy_url
from aichaos.network import NetworkFaults
from toxiproxy_report import BINARY, DESELECTED, NOT_RUN

TOXIPROXY_URL = os.environ.get("TOXIPROXY_URL", "")
real = pytest.mark.toxiproxy


UNMARKED = {
    "test_real_toxiproxy_tests_run_or_are_reported_as_not_run",
    "test_without_binary_and_go_the_real_tests_are_deselected_with_one_line",
}


def test_real_toxiproxy_tests_run_or_are_reported_as_not_run(pytestconfig: pytest.Config) -> None:
    """Unmarked, so it always runs: no real test can silently vanish or pass without Toxiproxy."""
    module = globals()
    real_tests = [
        name for name, value in module.items() if name.startswith("test_") and name not in UNMARKED
    ]
    assert len(real_tests) >= 5
    for name in real_tests:
        marks = [m.name for m in getattr(module[name], "pytestmark", [])]
        assert "toxiproxy" in marks, f"{name} must carry @pytest.mark.toxiproxy"
    assert any(line.startswith("toxiproxy:") for line in pytestconfig.getini("markers"))
    assert DESELECTED in pytestconfig.stash, "tests/conftest.py must import toxiproxy_report"
    left_out = [n for n in pytestconfig.stash[DESELECTED] if __name__ in n]
    available = bool(TOXIPROXY_URL) or pytestconfig.stash.get(BINARY, None) is not None
    if available:
        assert left_out == []
    else:
        assert sorted(n.split("::")[-1] for n in left_out) == sorted(real_tests)
        print(NOT_RUN)  # and the summary line at the end of the run


def test_without_binary_and_go_the_real_tests_are_deselected_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    monkeypatch.setenv("PATH", str(pytester.path / "empty"))  # neither toxiproxy-server nor go
    monkeypatch.setenv("HOME", str(pytester.path))
    pytester.makeconftest(
        "from toxiproxy_report import pytest_collection_modifyitems, pytest_terminal_summary"
    )
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    toxiproxy: real\n"
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.toxiproxy
        def test_real(): raise AssertionError("must not run")

        def test_other(): pass
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)
    lines = [line for line in result.outlines if NOT_RUN in line]
    assert len(lines) == 1, result.outlines
    assert "1 deselected, no toxiproxy-server binary and no Go" in lines[0]
    assert "go install github.com/Shopify/toxiproxy/v2/cmd/server@v2." in lines[0]


# --- the real tests ---------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"pong" * 8
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    """`host:port` where Toxiproxy reaches a small HTTP server run by this test."""
    public = os.environ.get("TOXIPROXY_UPSTREAM_HOST", "")
    bind = "0.0.0.0" if public else "127.0.0.1"
    if public == "auto":
        public = socket.gethostbyname(socket.gethostname())
    server = ThreadingHTTPServer((bind, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{public or '127.0.0.1'}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


API = ""


@pytest.fixture(autouse=True)
def _api(request: pytest.FixtureRequest) -> None:
    """The real Toxiproxy's API URL, for the helpers below (only marked tests start it)."""
    global API
    if request.node.get_closest_marker("toxiproxy"):
        API = normalize_toxiproxy_url(request.getfixturevalue("toxiproxy_url"))


def api() -> str:
    return API


def name() -> str:
    return f"aichaos_it_{uuid.uuid4().hex[:8]}"


def fault(proxy: dict[str, Any], **params: Any) -> Any:
    listen_host = "0.0.0.0" if os.environ.get("TOXIPROXY_UPSTREAM_HOST") else "127.0.0.1"
    spec = {"listen": f"{listen_host}:0", **proxy}
    return parse_fault({"kind": "network", "toxiproxy": api(), "proxy": spec, **params})


def connect_url(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = urlsplit(api()).hostname or "127.0.0.1"
    return f"http://{host}:{port}/"


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `condition()`: toxics come and go in the background, as their windows say."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def happened(net: NetworkFaults, action: str, fault: str = "") -> bool:
    """`net` recorded `action` ("toxic added", ...) for faults[N] (`fault` "fN"; "": any)."""
    prefix = f"aichaos_{fault}_" if fault else "aichaos_"
    return any(e.action == action and (e.toxic or "").startswith(prefix) for e in net.events)


def proxies_now() -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{api()}/proxies", timeout=5).json()
    return answer


def timed_get(url: str) -> float:
    started = time.monotonic()
    response = httpx.get(url, timeout=10)
    assert response.content == b"pong" * 8
    return time.monotonic() - started


async def atimed_get(url: str) -> float:
    return await anyio.to_thread.run_sync(timed_get, url)


@real
@pytest.mark.anyio
async def test_lifecycle_on_a_real_toxiproxy(upstream: str) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [
            fault({"name": proxy, "upstream": upstream}, toxic="latency", latency="100ms"),
            fault(
                {"name": proxy},
                toxic="bandwidth",
                rate=100,
                window={"start": "0.4s", "duration": "0.4s"},
            ),
        ]
    )
    await net.check()
    assert net.versions[api()]
    seen = []
    async with net.injecting():
        for action, toxic in (("toxic added", "f1"), ("toxic removed", "f1")):
            await until(functools.partial(happened, net, action, toxic))
            seen.append(sorted(t["name"] for t in proxies_now()[proxy]["toxics"]))
    assert seen == [
        ["aichaos_f0_latency_downstream", "aichaos_f1_bandwidth_downstream"],
        ["aichaos_f0_latency_downstream"],
    ]
    times = {(e.action, e.toxic): e.at for e in net.events}
    assert times[("toxic added", "aichaos_f1_bandwidth_downstream")] >= 0.4  # windows: lower
    assert times[("toxic removed", "aichaos_f1_bandwidth_downstream")] >= 0.8  # bounds only
    assert proxy not in proxies_now()


@real
@pytest.mark.anyio
async def test_latency_toxic_delays_a_proxied_connection(upstream: str) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [fault({"name": proxy, "upstream": upstream}, toxic="latency", latency="400ms")]
    )
    await net.check()
    async with net.proxies() as listen:
        url = connect_url(listen[proxy])
        before = await atimed_get(url)
        async with net.injecting():
            await anyio.sleep(0.2)  # the toxic is added in the background as the phase starts
            during = await atimed_get(url)
        after = await atimed_get(url)
    assert during - before >= 0.35, (before, during)
    assert after < during - 0.3, (during, after)


@real
@pytest.mark.anyio
async def test_latency_ends_with_its_window(upstream: str) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [
            fault(
                {"name": proxy, "upstream": upstream},
                toxic="latency",
                latency="500ms",
                window={"duration": "1s"},
            )
        ]
    )
    async with net.injecting():
        url = connect_url(net.listen[proxy])
        await anyio.sleep(0.2)  # the toxic is added in the background as the phase starts
        inside = await atimed_get(url)
        await anyio.sleep_until(net._origin + 1.3)  # type: ignore[operator]
        outside = await atimed_get(url)
    assert inside >= 0.45 and outside < 0.3, (inside, outside)


@real
@pytest.mark.anyio
async def test_reset_peer_breaks_connections_until_removed(upstream: str) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [fault({"name": proxy, "upstream": upstream}, toxic="reset_peer", timeout=0)]
    )
    async with net.proxies() as listen:
        url = connect_url(listen[proxy])
        async with net.injecting():
            await anyio.sleep(0.2)
            with pytest.raises(httpx.TransportError):
                await atimed_get(url)
        assert await atimed_get(url) < 1.0  # works again once the toxic is gone


@real
@pytest.mark.anyio
async def test_a_found_proxy_and_its_toxics_are_left_as_they_were(upstream: str) -> None:
    proxy = name()
    created = httpx.post(
        f"{api()}/proxies",
        json={"name": proxy, "listen": "127.0.0.1:0", "upstream": upstream},
        timeout=5,
    )
    assert created.status_code == 201, created.text
    theirs = {"name": "theirs", "type": "slicer", "attributes": {"average_size": 10}}
    assert httpx.post(f"{api()}/proxies/{proxy}/toxics", json=theirs, timeout=5).is_success
    before = proxies_now()[proxy]
    try:
        net = NetworkFaults.from_faults([fault({"name": proxy}, toxic="timeout", timeout="2s")])
        await net.check()
        with pytest.raises(ZeroDivisionError):
            async with net.injecting():
                await anyio.sleep(0.2)
                names = sorted(t["name"] for t in proxies_now()[proxy]["toxics"])
                assert names == ["aichaos_f0_timeout_downstream", "theirs"]
                raise ZeroDivisionError
        assert proxies_now()[proxy] == before
    finally:
        httpx.delete(f"{api()}/proxies/{proxy}", timeout=5)


@real
@pytest.mark.anyio
async def test_cancellation_removes_toxics_on_a_real_toxiproxy(upstream: str) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [fault({"name": proxy, "upstream": upstream}, toxic="limit_data", bytes=10)]
    )
    with anyio.move_on_after(0.5):
        async with net.injecting():
            await anyio.sleep(5)
    assert proxy not in proxies_now()
    assert net.leftovers == []
