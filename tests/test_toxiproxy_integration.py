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
import http.client
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import openai
import pytest

from aichaos.faults.base import parse_fault
from aichaos.faults.kinds.network import normalize_toxiproxy_url
from aichaos.network import NetworkError, NetworkFaults
from toxiproxy_helpers import (
    Answer,
    ask,
    foreign_proxy,
    sdk,
    toxic_names,
    until,
    upstream_server,
)
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
# Each measures what Toxiproxy did on real sockets, between the upstream (which logs when it
# wrote each answer) and the real openai SDK; every timing claim is a lower bound that the
# toxic makes certain (a delay it must wait, bytes it must hold back).
SLACK = 0.005  # timer granularity of Toxiproxy's and this process's clocks, for lower bounds


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[Answer]]]:
    with upstream_server() as served:
        yield served


def api() -> str:
    return API


API = ""


@pytest.fixture(autouse=True)
def _api(request: pytest.FixtureRequest) -> None:
    """The real Toxiproxy's API URL, for the helpers below (only marked tests start it)."""
    global API
    if request.node.get_closest_marker("toxiproxy"):
        API = normalize_toxiproxy_url(request.getfixturevalue("toxiproxy_url"))


def name() -> str:
    return f"aichaos_it_{uuid.uuid4().hex[:8]}"


def fault(proxy: dict[str, Any], **params: Any) -> Any:
    listen_host = "0.0.0.0" if os.environ.get("TOXIPROXY_UPSTREAM_HOST") else "127.0.0.1"
    spec = {"listen": f"{listen_host}:0", **proxy}
    return parse_fault({"kind": "network", "toxiproxy": api(), "proxy": spec, **params})


def one_toxic(upstream: str, toxic: str, **params: Any) -> tuple[NetworkFaults, str]:
    """The faults of one toxic on a proxy aichaos creates in front of `upstream`."""
    proxy = name()
    net = NetworkFaults.from_faults(
        [fault({"name": proxy, "upstream": upstream}, toxic=toxic, **params)]
    )
    return net, proxy


def base_url(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = urlsplit(api()).hostname or "127.0.0.1"
    return f"http://{host}:{port}"


def happened(net: NetworkFaults, action: str, fault: str = "") -> bool:
    """`net` recorded `action` ("toxic added", ...) for faults[N] (`fault` "fN"; "": any)."""
    prefix = f"aichaos_{fault}_" if fault else "aichaos_"
    return any(e.action == action and (e.toxic or "").startswith(prefix) for e in net.events)


async def in_thread(call: Any, *args: Any) -> Any:
    """Blocking SDK calls off the event loop, which moves the toxics' windows meanwhile."""
    return await anyio.to_thread.run_sync(functools.partial(call, *args))


def transport_error(exc: BaseException | None) -> bool:
    """A TransportError of the HTTP library the SDK runs on (httpx or httpx2)."""
    library = sys.modules[type(exc).__module__.split(".")[0]]
    if library.__name__ not in ("httpx", "httpx2"):
        return False
    return isinstance(exc, library.TransportError)


def timed(call: Any, *args: Any) -> tuple[Any, float]:
    """(what `call` returned, `time.monotonic()` when it returned)."""
    result = call(*args)
    return result, time.monotonic()


def raised(call: Any, *args: Any) -> tuple[BaseException, float]:
    """(the exception `call` raised, when); AssertionError if it returned."""
    started = time.monotonic()
    try:
        call(*args)
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError(f"{call} returned")


# --- lifecycle -----------------------------------------------------------------------------
@real
@pytest.mark.anyio
async def test_lifecycle_on_a_real_toxiproxy(upstream: tuple[str, list[Answer]]) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [
            fault({"name": proxy, "upstream": upstream[0]}, toxic="latency", latency="100ms"),
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
        for action in ("toxic added", "toxic removed"):
            await until(functools.partial(happened, net, action, "f1"))
            seen.append(toxic_names(api(), proxy))
    assert seen == [
        ["aichaos_f0_latency_downstream", "aichaos_f1_bandwidth_downstream"],
        ["aichaos_f0_latency_downstream"],
    ]
    assert [(e.action, e.toxic) for e in net.events] == [
        ("proxy created", None),
        ("toxic added", "aichaos_f0_latency_downstream"),  # before the body ran
        ("toxic added", "aichaos_f1_bandwidth_downstream"),
        ("toxic removed", "aichaos_f1_bandwidth_downstream"),
        ("toxic removed", "aichaos_f0_latency_downstream"),
        ("proxy deleted", None),
    ]
    times = {(e.action, e.toxic): e.at for e in net.events}
    assert times[("toxic added", "aichaos_f1_bandwidth_downstream")] >= 0.4  # windows: lower
    assert times[("toxic removed", "aichaos_f1_bandwidth_downstream")] >= 0.8  # bounds only
    assert proxy not in proxies_now()
    assert net.leftovers == []


def proxies_now() -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{api()}/proxies", timeout=10).json()
    return answer


@real
@pytest.mark.anyio
async def test_check_refuses_what_it_cannot_carry_out_and_changes_nothing(
    upstream: tuple[str, list[Answer]],
) -> None:
    theirs = name()
    leftover = {"name": "aichaos_f0_latency_downstream", "type": "latency"}
    with foreign_proxy(api(), theirs, upstream[0], "127.0.0.1:0", leftover):
        before = proxies_now()
        cases = {
            r"has no proxy 'aichaos_it_.*upstream: HOST:PORT": [
                fault({"name": name()}, toxic="latency", latency="1s")
            ],
            rf"forwards to {upstream[0]}, but faults\[0\] says upstream 127.0.0.1:9": [
                fault({"name": theirs, "upstream": "127.0.0.1:9"}, toxic="latency", latency="1s")
            ],
            r"already has toxic.*aichaos_f0_latency_downstream.*curl -X DELETE": [
                fault({"name": theirs}, toxic="latency", latency="1s")
            ],
        }
        for message, faults in cases.items():
            with pytest.raises(NetworkError, match=message):
                await NetworkFaults.from_faults(faults).check()
        clash = [
            fault({"name": theirs, "upstream": upstream[0]}, toxic="latency", latency="1s"),
            fault({"name": theirs, "upstream": "127.0.0.1:9"}, toxic="timeout"),
        ]
        with pytest.raises(NetworkError, match=r"faults\[1\] gives proxy .* upstream 127.0.0.1:9"):
            await NetworkFaults.from_faults(clash).check()
        assert proxies_now() == before


@real
@pytest.mark.anyio
async def test_the_toxic_sent_is_the_fault(upstream: tuple[str, list[Answer]]) -> None:
    net, proxy = one_toxic(
        upstream[0], "latency", latency="500ms", jitter="50ms", toxicity=0.3, stream="upstream"
    )
    async with net.injecting():
        toxics = proxies_now()[proxy]["toxics"]
    assert toxics == [
        {
            "name": "aichaos_f0_latency_upstream",
            "type": "latency",
            "stream": "upstream",
            "toxicity": 0.3,
            "attributes": {"latency": 500, "jitter": 50},
        }
    ]
    assert proxy not in proxies_now()


@real
@pytest.mark.anyio
async def test_everything_is_removed_after_an_exception(
    upstream: tuple[str, list[Answer]],
) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [
            fault({"name": proxy, "upstream": upstream[0]}, toxic="latency", latency="1s"),
            fault({"name": proxy}, toxic="timeout"),
        ]
    )
    with pytest.raises(KeyError, match="the app crashed"):
        async with net.injecting():
            assert len(toxic_names(api(), proxy)) == 2
            raise KeyError("the app crashed")  # the caller sees its own exception, unwrapped
    assert proxy not in proxies_now()
    assert net.leftovers == []


@real
@pytest.mark.anyio
async def test_an_outer_proxies_scope_keeps_created_proxies_for_every_phase(
    upstream: tuple[str, list[Answer]],
) -> None:
    net, proxy = one_toxic(upstream[0], "latency", latency="10ms")
    await net.check()
    async with net.proxies() as listen:
        assert toxic_names(api(), proxy) == []  # baseline: the proxy carries traffic, clean
        async with net.injecting():
            assert toxic_names(api(), proxy) == ["aichaos_f0_latency_downstream"]
        assert toxic_names(api(), proxy) == []  # recovery
        assert listen[proxy] == proxies_now()[proxy]["listen"]
        assert await in_thread(ask, sdk(base_url(listen[proxy]))) == "xxxx"
    assert proxy not in proxies_now()


# --- each toxic, through the real openai SDK ----------------------------------------------
@real
@pytest.mark.anyio
async def test_latency_adds_its_delay_to_every_answer(upstream: tuple[str, list[Answer]]) -> None:
    net, proxy = one_toxic(upstream[0], "latency", latency="300ms")
    answers = upstream[1]
    async with net.proxies() as listen:
        client = sdk(base_url(listen[proxy]))
        assert await in_thread(ask, client) == "xxxx"  # through the proxy, before the toxic
        async with net.injecting():
            await until(functools.partial(happened, net, "toxic added"))
            content, received = await in_thread(timed, ask, client)
    assert content == "xxxx"
    # Toxiproxy holds each chunk 300 ms from when it read it from the upstream, which was
    # after the upstream wrote it: the measured added delay is at least the latency.
    added = received - answers[-1].finished
    assert added >= 0.3 - SLACK, f"added delay {added:.3f}s"


@real
@pytest.mark.anyio
async def test_bandwidth_caps_the_rate(upstream: tuple[str, list[Answer]]) -> None:
    net, proxy = one_toxic(upstream[0], "bandwidth", rate=50)  # KB/s: 50 bytes per ms
    answers = upstream[1]
    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        client = sdk(base_url(running.listen[proxy]))
        content, received = await in_thread(timed, ask, client, "size:20000")
    assert content == "x" * 20000  # all of it, only slower
    answer = answers[-1]
    took = received - answer.started
    assert took >= answer.size / 50 / 1000 - SLACK, f"{answer.size} bytes in {took:.3f}s"


@real
@pytest.mark.anyio
async def test_slow_close_delays_the_end_of_a_body_read_until_close(
    upstream: tuple[str, list[Answer]],
) -> None:
    net, proxy = one_toxic(upstream[0], "slow_close", delay="400ms")
    answers = upstream[1]
    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        client = sdk(base_url(running.listen[proxy]))
        # An answer with a length ends with its last byte: the late close does not show...
        assert await in_thread(ask, client, "size:10") == "x" * 10
        # ...an answer delimited by the close of the connection ends only with the close.
        content, received = await in_thread(timed, ask, client, "close:10")
    assert content == "x" * 10
    closed = answers[-1].finished
    assert received - closed >= 0.4 - SLACK, f"close seen {received - closed:.3f}s late"


@real
@pytest.mark.anyio
async def test_timeout_holds_the_answer_until_the_sdk_gives_up(
    upstream: tuple[str, list[Answer]],
) -> None:
    net, proxy = one_toxic(upstream[0], "timeout", timeout=0)  # 0: hold, never close
    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        client = sdk(base_url(running.listen[proxy]), timeout=0.5)
        error, took = await in_thread(raised, ask, client)
    assert isinstance(error, openai.APITimeoutError), repr(error)
    assert took >= 0.5 - SLACK
    assert upstream[1], "the request reached the upstream; its answer was held back"


@real
@pytest.mark.anyio
async def test_timeout_with_a_limit_closes_the_connection(
    upstream: tuple[str, list[Answer]],
) -> None:
    net, proxy = one_toxic(upstream[0], "timeout", timeout="300ms")
    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        client = sdk(base_url(running.listen[proxy]), timeout=30)
        error, took = await in_thread(raised, ask, client)
    # Closed with no answer: a connection error, not the SDK's own timeout (30 s).
    assert isinstance(error, openai.APIConnectionError), repr(error)
    assert not isinstance(error, openai.APITimeoutError)
    assert took >= 0.3 - SLACK


@real
@pytest.mark.anyio
async def test_reset_peer_is_a_connection_error_in_the_sdk(
    upstream: tuple[str, list[Answer]],
) -> None:
    net, proxy = one_toxic(upstream[0], "reset_peer", timeout=0)
    async with net.proxies() as listen:
        client = sdk(base_url(listen[proxy]))
        async with net.injecting():
            await until(functools.partial(happened, net, "toxic added"))
            error, _ = await in_thread(raised, ask, client)
        assert await in_thread(ask, client) == "xxxx"  # works again once the toxic is gone
    assert isinstance(error, openai.APIConnectionError), repr(error)
    assert not isinstance(error, openai.APITimeoutError)
    assert transport_error(error.__cause__), repr(error.__cause__)


@real
@pytest.mark.anyio
async def test_slicer_cuts_the_answer_into_slices_delay_apart(
    upstream: tuple[str, list[Answer]],
) -> None:
    net, proxy = one_toxic(upstream[0], "slicer", average_size=200, size_variation=50, delay="10ms")
    answers = upstream[1]
    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        client = sdk(base_url(running.listen[proxy]))
        content, received = await in_thread(timed, ask, client, "size:4000")
    assert content == "x" * 4000  # intact, however it was cut
    answer = answers[-1]
    # No slice is longer than 250 bytes, and Toxiproxy waits 10 ms after each one.
    slices = -(-answer.size // 250)
    took = received - answer.started
    assert took >= (slices - 1) * 0.010 - SLACK, f"{slices}+ slices in {took:.3f}s"


@real
@pytest.mark.anyio
async def test_limit_data_cuts_the_answer_short(upstream: tuple[str, list[Answer]]) -> None:
    net, proxy = one_toxic(upstream[0], "limit_data", bytes=400)
    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        client = sdk(base_url(running.listen[proxy]))
        error, _ = await in_thread(raised, ask, client, "size:4000")
    # The headers got through, the body did not: httpx reports the short body.
    assert isinstance(error, openai.APIConnectionError), repr(error)
    cause = error.__cause__
    assert transport_error(cause), repr(cause)
    assert type(cause).__name__ == "RemoteProtocolError", repr(cause)
    assert "without sending complete message body" in str(cause)


# --- toxicity, windows, proxies it did not create -----------------------------------------
@real
@pytest.mark.anyio
async def test_toxicity_is_drawn_per_connection(upstream: tuple[str, list[Answer]]) -> None:
    net, proxy = one_toxic(upstream[0], "reset_peer", timeout=0, toxicity=0.5)
    outcomes: list[list[bool]] = []

    def connection(listen: str) -> list[bool]:
        """Four requests on one new keep-alive connection: did each get an answer?"""
        host, _, port = base_url(listen).removeprefix("http://").rpartition(":")
        seen: list[bool] = []
        ports = set()
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            for _ in range(4):
                try:
                    conn.request("GET", "/")
                    ports.add(json.loads(conn.getresponse().read())["port"])
                    seen.append(True)
                except (OSError, http.client.HTTPException):
                    seen.append(False)
                    break  # the connection is gone; a retry would be a new one
        finally:
            conn.close()
        assert len(ports) <= 1, "one connection, one upstream connection"
        return seen

    async with net.injecting() as running:
        await until(functools.partial(happened, net, "toxic added"))
        for _ in range(24):
            outcomes.append(await in_thread(connection, running.listen[proxy]))
    reset = [o for o in outcomes if o == [False]]
    spared = [o for o in outcomes if o == [True] * 4]
    assert len(reset) + len(spared) == 24, outcomes  # all or nothing per connection
    # With toxicity 0.5, all 24 alike has a chance of 2 in 2**24.
    assert reset and spared, outcomes


@real
@pytest.mark.anyio
async def test_a_found_proxy_and_its_toxics_are_left_as_they_were(
    upstream: tuple[str, list[Answer]],
) -> None:
    proxy = name()
    theirs = {"name": "theirs", "type": "slicer", "attributes": {"average_size": 10}}
    with foreign_proxy(api(), proxy, upstream[0], "127.0.0.1:0", theirs) as before:
        net = NetworkFaults.from_faults([fault({"name": proxy}, toxic="timeout", timeout="2s")])
        await net.check()
        with pytest.raises(ZeroDivisionError):
            async with net.injecting():
                await until(functools.partial(happened, net, "toxic added"))
                assert toxic_names(api(), proxy) == ["aichaos_f0_timeout_downstream", "theirs"]
                raise ZeroDivisionError
        assert proxies_now()[proxy] == before


@real
@pytest.mark.anyio
async def test_cancellation_removes_toxics_on_a_real_toxiproxy(
    upstream: tuple[str, list[Answer]],
) -> None:
    proxy = name()
    net = NetworkFaults.from_faults(
        [
            fault({"name": proxy, "upstream": upstream[0]}, toxic="limit_data", bytes=10),
            fault({"name": proxy}, toxic="timeout", window={"start": "60s"}),  # never reached
        ]
    )
    with anyio.CancelScope() as scope:
        async with net.injecting():
            await until(functools.partial(happened, net, "toxic added"))
            scope.cancel()  # as a stop_when or Ctrl-C cancels the inject phase
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert proxy not in proxies_now()
    assert net.leftovers == []
    assert [e.action for e in net.events] == [
        "proxy created",
        "toxic added",
        "toxic removed",
        "proxy deleted",
    ]
