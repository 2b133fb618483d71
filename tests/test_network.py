"""The `network` fault kind and its Toxiproxy controller, against the fake Toxiproxy API.

The fake (tests/toxiproxy_fake.py) speaks Toxiproxy's HTTP API but carries no
traffic: these tests check what aichaos asks of Toxiproxy and when. Real effects
on connections are tested in test_toxiproxy_integration.py against a real one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from pydantic import ValidationError

from aichaos.faults.base import fault_kinds, parse_fault
from aichaos.faults.kinds.network import Network
from aichaos.network import NetworkError, NetworkFaults
from aichaos.network import client as client_module
from servers import serve
from toxiproxy_fake import FakeToxiproxy


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake() -> Iterator[tuple[FakeToxiproxy, str]]:
    app = FakeToxiproxy()
    with serve(app) as url:
        yield app, url


def network(url: str, **params: Any) -> Network:
    fault = parse_fault({"kind": "network", "toxiproxy": url, **params})
    assert isinstance(fault, Network)
    return fault


def latency(url: str, **params: Any) -> Network:
    data: dict[str, Any] = {
        "backend": "openai",
        "toxic": "latency",
        "latency": "500ms",
        "proxy": {"name": "openai", "listen": "127.0.0.1:0", "upstream": "mock:8900"},
    }
    return network(url, **{**data, **params})


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for `condition()`: toxics are added in the background as the phase starts."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the fault kind ------------------------------------------------------------------------
def test_network_is_a_registered_kind_that_never_acts_on_a_request() -> None:
    assert fault_kinds()["network"] is Network
    fault = latency("http://127.0.0.1:8474")
    assert fault.apply(None, None) is False  # type: ignore[arg-type]
    assert fault.label() == "network(latency 500ms downstream)"


def test_attributes_are_sent_in_toxiproxys_units() -> None:
    url = "127.0.0.1:8474"
    cases = [
        (
            {"toxic": "latency", "latency": "1.5s", "jitter": "20ms"},
            {"latency": 1500, "jitter": 20},
        ),
        ({"toxic": "bandwidth", "rate": 64}, {"rate": 64}),
        ({"toxic": "slow_close", "delay": "2s"}, {"delay": 2000}),
        ({"toxic": "timeout", "timeout": "3s"}, {"timeout": 3000}),
        ({"toxic": "timeout"}, {"timeout": 0}),
        ({"toxic": "reset_peer"}, {"timeout": 0}),
        (
            {"toxic": "slicer", "average_size": 64, "size_variation": 8, "delay": "5ms"},
            {"average_size": 64, "size_variation": 8, "delay": 5000},  # microseconds
        ),
        ({"toxic": "limit_data", "bytes": 1024}, {"bytes": 1024}),
    ]
    for params, expected in cases:
        fault = network(url, backend="openai", **params)
        payload = fault.toxic_payload("t")
        assert payload["attributes"] == expected, params
        assert (payload["stream"], payload["toxicity"]) == ("downstream", 1.0)
        assert fault.toxiproxy == "http://127.0.0.1:8474"


@pytest.mark.parametrize("trigger", ["probability", "first", "every", "ramp", "match"])
def test_per_request_triggers_are_refused_with_a_pointer_to_toxicity(trigger: str) -> None:
    values = {
        "probability": 0.5,
        "first": 3,
        "every": 2,
        "ramp": {"over": "10s"},
        "match": {"path": "/v1/*"},
    }
    with pytest.raises(ValidationError) as info:
        latency("http://127.0.0.1:8474", **{trigger: values[trigger]})
    message = str(info.value)
    assert f"{trigger}: not for a network fault" in message
    assert "toxicity is drawn per connection by Toxiproxy; use toxicity" in message


def test_invalid_network_faults_say_what_to_fix() -> None:
    url = "http://127.0.0.1:8474"
    problems = {
        "not an attribute of the latency toxic; it takes latency, jitter": {"rate": 10},
        "the bandwidth toxic needs rate": {"toxic": "bandwidth", "latency": None},
        "acts on one Toxiproxy proxy": {"backend": "*", "proxy": None},
        "write host:port, not a URL": {"proxy": {"upstream": "http://mock:8900"}},
        "toxiproxy-python cannot use https": {"toxiproxy": "https://toxiproxy:8474"},
        "cannot reach an API under a path": {"toxiproxy": "http://toxiproxy:8474/api"},
    }
    for expected, params in problems.items():
        data = {"backend": "openai", "toxic": "latency", "latency": "1s", **params}
        data = {k: v for k, v in data.items() if v is not None}
        data.setdefault("toxiproxy", url)
        with pytest.raises(ValidationError, match=expected):
            parse_fault({"kind": "network", **data})
    assert latency(url, toxicity=0.25, stream="upstream").toxic_payload("x")["toxicity"] == 0.25


def test_default_api_url_and_proxy_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", "toxiproxy:8474")
    fault = parse_fault({"kind": "network", "backend": "claude", "toxic": "reset_peer"})
    assert isinstance(fault, Network)
    assert fault.toxiproxy == "http://toxiproxy:8474"
    assert fault.proxy_name == "aichaos_claude"
    monkeypatch.delenv("TOXIPROXY_URL")
    fault = parse_fault({"kind": "network", "backend": ["claude"], "toxic": "timeout"})
    assert isinstance(fault, Network)
    assert (fault.toxiproxy, fault.proxy_name) == ("http://127.0.0.1:8474", "aichaos_claude")


def test_from_faults_keeps_only_network_faults() -> None:
    outage = parse_fault({"kind": "outage", "backend": "openai"})
    assert NetworkFaults.from_faults([outage]).empty
    net = NetworkFaults.from_faults([outage, latency("http://127.0.0.1:8474")])
    assert not net.empty
    assert [(t.index, t.name, t.proxy) for t in net.toxics] == [
        (1, "aichaos_f1_latency_downstream", "openai")
    ]
    assert "faults[1] network(latency 500ms downstream)" in net.describe()[0]


# --- before anything is injected --------------------------------------------------------
@pytest.mark.anyio
async def test_unreachable_toxiproxy_is_a_clear_error_before_anything_is_injected() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    net = NetworkFaults.from_faults([latency(url)], call_timeout=2)
    with pytest.raises(NetworkError, match=f"cannot reach Toxiproxy at {url}.*is it running"):
        await net.check()
    entered = False
    with pytest.raises(NetworkError, match="cannot reach Toxiproxy"):
        async with net.injecting():
            entered = True
    assert not entered


@pytest.mark.anyio
async def test_something_else_on_the_port_is_not_taken_for_toxiproxy() -> None:
    async def not_toxiproxy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no such page"})

    with serve(not_toxiproxy) as url:
        net = NetworkFaults.from_faults([latency(url)])
        with pytest.raises(NetworkError, match=r"GET /version with 404.*Toxiproxy's API port"):
            await net.check()


@pytest.mark.anyio
async def test_an_error_answer_is_reported_with_toxiproxys_message(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    app.fail("GET", "/proxies", 500, "collection is locked")
    net = NetworkFaults.from_faults([latency(url)])
    with pytest.raises(NetworkError) as info:
        await net.check()
    assert str(info.value) == ("Toxiproxy answered GET /proxies with 500: collection is locked")
    assert app.changes() == []  # nothing was created or added


@pytest.mark.anyio
async def test_a_refused_proxy_creation_is_reported_and_nothing_is_left(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    app.fail("POST", "/proxies", 500, "listen tcp 127.0.0.1:18080: bind: address already in use")
    net = NetworkFaults.from_faults([latency(url)])
    await net.check()
    with pytest.raises(NetworkError, match=r"POST /proxies with 500: listen tcp .* already in use"):
        async with net.injecting():
            raise AssertionError("the inject phase must not start")
    assert app.proxies == {}
    assert app.changes() == ["POST /proxies"]  # no DELETE of a proxy aichaos did not create


@pytest.mark.anyio
async def test_check_refuses_what_it_cannot_carry_out(fake: tuple[FakeToxiproxy, str]) -> None:
    app, url = fake
    missing = latency(url, proxy={"name": "nothing-here"})
    with pytest.raises(NetworkError, match=r"has no proxy 'nothing-here'.*upstream: HOST:PORT"):
        await NetworkFaults.from_faults([missing]).check()

    app.add_proxy("openai", "127.0.0.1:18080", "elsewhere:1")
    with pytest.raises(NetworkError, match="forwards to elsewhere:1, but faults\\[0\\] says"):
        await NetworkFaults.from_faults([latency(url)]).check()

    clash = [latency(url), latency(url, proxy={"name": "openai", "upstream": "other:2"})]
    with pytest.raises(NetworkError, match="faults\\[1\\] gives proxy 'openai' upstream other:2"):
        await NetworkFaults.from_faults(clash).check()

    leftover = {"type": "latency", "attributes": {"latency": 5}}
    app.add_proxy("api", "127.0.0.1:18081", "up:1", aichaos_f0_latency_downstream=leftover)
    with pytest.raises(NetworkError, match=r"already has toxic.*curl -X DELETE"):
        await NetworkFaults.from_faults([latency(url, proxy={"name": "api"})]).check()
    assert app.changes() == []


def test_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(client_module.importlib, "import_module", no_module)
    with pytest.raises(NetworkError, match=r"pip install 'aichaos\[toxiproxy\]'"):
        client_module.load_library()


# --- the toxic lifecycle ------------------------------------------------------------------
@pytest.mark.anyio
async def test_toxics_follow_their_windows_and_created_proxies_are_deleted(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    whole = latency(url, toxicity=0.5)
    windowed = latency(
        url, toxic="reset_peer", latency=None, timeout="1s", stream="upstream",
        window={"start": "0.4s", "duration": "0.8s"},
    )  # fmt: skip
    net = NetworkFaults.from_faults([whole, windowed])
    await net.check()
    assert net.versions == {url: "2.9.0-fake"}
    seen: list[list[str]] = []
    async with net.injecting():
        assert net.listen["openai"].startswith("127.0.0.1:")
        for moment in (0.2, 0.8, 1.6):
            await anyio.sleep_until(net._origin + moment)  # type: ignore[operator]
            seen.append(app.toxic_names("openai"))
    assert seen == [
        ["aichaos_f0_latency_downstream"],
        ["aichaos_f0_latency_downstream", "aichaos_f1_reset_peer_upstream"],
        ["aichaos_f0_latency_downstream"],
    ]
    assert app.proxies == {}  # created by aichaos, so deleted
    actions = [(e.action, e.toxic) for e in net.events]
    assert actions == [
        ("proxy created", None),
        ("toxic added", "aichaos_f0_latency_downstream"),
        ("toxic added", "aichaos_f1_reset_peer_upstream"),
        ("toxic removed", "aichaos_f1_reset_peer_upstream"),
        ("toxic removed", "aichaos_f0_latency_downstream"),
        ("proxy deleted", None),
    ]
    added = {e.toxic: e.at for e in net.events if e.action == "toxic added"}
    assert added["aichaos_f0_latency_downstream"] < 0.2
    assert 0.4 <= added["aichaos_f1_reset_peer_upstream"] < 0.8
    assert net.leftovers == []


@pytest.mark.anyio
async def test_the_toxic_sent_is_the_fault(fake: tuple[FakeToxiproxy, str]) -> None:
    app, url = fake
    fault = latency(url, jitter="50ms", toxicity=0.3, stream="upstream")
    net = NetworkFaults.from_faults([fault])
    async with net.injecting():
        await until(lambda: bool(app.toxic_names("openai")))
        toxics = [dict(t) for t in app.proxies["openai"]["toxics"]]
    assert toxics == [
        {
            "name": "aichaos_f0_latency_upstream",
            "type": "latency",
            "stream": "upstream",
            "toxicity": 0.3,
            "attributes": {"latency": 500, "jitter": 50},
        }
    ]
    assert app.proxies == {}


@pytest.mark.anyio
async def test_everything_is_removed_after_an_exception(fake: tuple[FakeToxiproxy, str]) -> None:
    app, url = fake
    net = NetworkFaults.from_faults([latency(url), latency(url, toxic="timeout", latency=None)])
    with pytest.raises(KeyError, match="the app crashed"):
        async with net.injecting():
            await until(lambda: len(app.toxic_names("openai")) == 2)
            raise KeyError("the app crashed")  # the caller sees its own exception, unwrapped
    assert app.proxies == {}
    assert net.leftovers == []


@pytest.mark.anyio
async def test_everything_is_removed_after_cancellation(fake: tuple[FakeToxiproxy, str]) -> None:
    app, url = fake
    net = NetworkFaults.from_faults([latency(url), latency(url, window={"start": "5s"})])
    with anyio.CancelScope() as scope:
        async with net.injecting():
            await until(lambda: app.toxic_names("openai") == ["aichaos_f0_latency_downstream"])
            scope.cancel()  # as Ctrl-C or a stop_when cancels the phase
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert app.proxies == {}
    assert [e.action for e in net.events][-2:] == ["toxic removed", "proxy deleted"]


@pytest.mark.anyio
async def test_found_proxies_and_their_toxics_are_left_as_they_were(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    theirs = {"type": "bandwidth", "stream": "upstream", "toxicity": 0.7, "attributes": {"rate": 9}}
    app.add_proxy("openai", "0.0.0.0:18080", "mock:8900", theirs=theirs)
    before = app.proxies["openai"]
    snapshot = {**before, "toxics": [dict(t) for t in before["toxics"]]}
    fault = latency(url, proxy={"name": "openai", "listen": "[::]:18080", "upstream": "mock:8900"})
    net = NetworkFaults.from_faults([fault])
    await net.check()
    with pytest.raises(RuntimeError):
        async with net.injecting():
            await until(lambda: len(app.toxic_names("openai")) == 2)
            assert app.toxic_names("openai") == ["theirs", "aichaos_f0_latency_downstream"]
            assert net.listen == {"openai": "0.0.0.0:18080"}
            raise RuntimeError("stop")
    assert app.proxies == {"openai": snapshot}
    assert not any(c.startswith("DELETE /proxies/openai/toxics/theirs") for c in app.changes())
    assert "DELETE /proxies/openai" not in app.changes()


@pytest.mark.anyio
async def test_a_failure_during_the_phase_aborts_it_and_cleans_up(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    app.fail("POST", "/proxies/openai/toxics", 500, "toxic store full", skip=1)
    net = NetworkFaults.from_faults([latency(url), latency(url, window={"start": "0.2s"})])
    body_cancelled = False
    with pytest.raises(
        NetworkError, match="POST /proxies/openai/toxics with 500: toxic store full"
    ):
        async with net.injecting():
            try:
                await anyio.sleep(5)
            except anyio.get_cancelled_exc_class():
                body_cancelled = True
                raise
    assert body_cancelled
    assert app.proxies == {}
    assert net.leftovers == []


@pytest.mark.anyio
async def test_blocking_calls_never_stall_the_event_loop(fake: tuple[FakeToxiproxy, str]) -> None:
    app, url = fake
    app.delay = 0.25  # every answer of Toxiproxy takes a while
    net = NetworkFaults.from_faults([latency(url)])
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        started = time.monotonic()
        await net.check()  # GET /version (httpx), then two blocking library calls
        async with net.injecting():  # GET + POST /proxies, then POST toxics
            await until(lambda: app.toxic_names("openai") == ["aichaos_f0_latency_downstream"])
        elapsed = time.monotonic() - started
        tg.cancel_scope.cancel()
    assert elapsed > 1.5  # at least 6 slow answers were waited for
    assert ticks >= elapsed / 0.01 * 0.5  # the loop kept ticking all along
    assert app.proxies == {}


@pytest.mark.anyio
async def test_a_silent_toxiproxy_gives_an_error_not_a_hang(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    net = NetworkFaults.from_faults([latency(url)], call_timeout=0.3)
    await net.check()
    app.slow_paths["GET /proxies"] = 1.0  # the library's call: in a thread, under a deadline
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"did not answer in 0.3s \(to look up proxy"):
        await net.check()
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_cleanup_that_cannot_finish_is_reported_with_the_command_to_finish_it(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    net = NetworkFaults.from_faults([latency(url)], call_timeout=0.5)
    async with net.injecting():
        await until(lambda: bool(app.toxic_names("openai")))
        app.fail("DELETE", "/proxies/openai/toxics/aichaos_f0_latency_downstream", 500, "busy")
        app.fail("DELETE", "/proxies/openai", 500, "busy")
    assert len(net.leftovers) == 2
    toxic_left, proxy_left = net.leftovers
    assert "could not remove toxic 'aichaos_f0_latency_downstream' on proxy 'openai'" in toxic_left
    assert f"curl -X DELETE {url}/proxies/openai/toxics/aichaos_f0_latency_downstream" in toxic_left
    assert "busy" in toxic_left
    assert proxy_left.endswith(f"curl -X DELETE {url}/proxies/openai")
    assert app.toxic_names("openai") == ["aichaos_f0_latency_downstream"]


@pytest.mark.anyio
async def test_outer_proxies_scope_keeps_created_proxies_for_every_phase(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    net = NetworkFaults.from_faults([latency(url)])
    await net.check()
    async with net.proxies() as listen:
        assert "openai" in app.proxies and app.toxic_names("openai") == []  # baseline
        async with net.injecting():
            await until(lambda: app.toxic_names("openai") == ["aichaos_f0_latency_downstream"])
        assert "openai" in app.proxies and app.toxic_names("openai") == []  # recovery
        assert listen["openai"] == app.proxies["openai"]["listen"]
    assert app.proxies == {}


@pytest.mark.anyio
async def test_no_network_faults_means_no_toxiproxy_at_all() -> None:
    net = NetworkFaults.from_faults([parse_fault({"kind": "outage"})])
    await net.check()  # nothing to reach: no error even with no Toxiproxy anywhere
    async with net.injecting() as same:
        assert same is net
    assert net.events == []
