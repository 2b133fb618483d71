"""The `network` fault kind, and its Toxiproxy controller where a real Toxiproxy cannot serve.

The fault kind's parsing and units need no server. The controller's lifecycle (windows,
the toxic sent, cleanup, found and created proxies) is tested against the real Toxiproxy in
test_toxiproxy_integration.py and test_toxiproxy_runs.py. Here it meets what a real
Toxiproxy cannot be made to do on demand, through tests/toxiproxy_fake.py: answer an error,
answer slowly or not at all, fail in the middle of a phase or of its cleanup.
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
        app.answer_now()  # a request the test left waiting does not hold the server's stop


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


def test_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(client_module.importlib, "import_module", no_module)
    with pytest.raises(NetworkError, match=r"pip install 'aichaos\[toxiproxy\]'"):
        client_module.load_library()


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
    app.delay = 0.5  # every answer of Toxiproxy takes a while
    net = NetworkFaults.from_faults([latency(url)])
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await anyio.sleep(0.01)
            ticks.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await net.check()  # GET /version (httpx), then two blocking library calls
        async with net.injecting():  # GET + POST /proxies, then POST toxics
            await until(lambda: app.toxic_names("openai") == ["aichaos_f0_latency_downstream"])
        tg.cancel_scope.cancel()
    # While each call waited its 0.5 s for an answer, the event loop went on ticking: a
    # blocking call would have held it for the whole wait. (Orderings only, no upper bound.)
    answered = [at + app.delay for at, _, _ in app.requests]
    assert len(answered) >= 6
    for arrived, done in zip([at for at, _, _ in app.requests], answered, strict=True):
        assert any(arrived < tick < done for tick in ticks), (arrived, done)
    assert app.proxies == {}


@pytest.mark.anyio
async def test_a_silent_toxiproxy_gives_an_error_not_a_hang(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    # The deadline leaves every other answer ample time, even on a loaded machine.
    net = NetworkFaults.from_faults([latency(url)], call_timeout=2)
    await net.check()
    app.slow_paths["GET /proxies"] = 6.0  # the library's call: in a thread, under a deadline
    with pytest.raises(NetworkError, match=r"did not answer in 2s \(to look up proxy"):
        await net.check()  # not answered after 6 s: the deadline ended the wait first


TOXIC = "aichaos_f0_latency_downstream"
ADDED = ("toxic added", "network(latency 500ms downstream)")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("window", "slow", "removed"),
    [
        ({"start": "50ms"}, "POST /proxies/openai/toxics", "inject phase over"),
        (
            {"start": "0s", "duration": "50ms"},
            f"DELETE /proxies/openai/toxics/{TOXIC}",
            "window closed",
        ),
    ],
    ids=["add", "remove"],
)
async def test_a_toxic_change_under_way_when_the_phase_ends_is_finished_and_recorded(
    fake: tuple[FakeToxiproxy, str], window: dict[str, str], slow: str, removed: str
) -> None:
    # On a loaded machine the phase may end while a window's change is on its way to
    # Toxiproxy, which makes it all the same: the events must say so (they did not).
    app, url = fake
    app.slow_paths[slow] = 0.3
    net = NetworkFaults.from_faults([latency(url, window=window)])
    async with net.injecting():
        await until(lambda: any(f"{m} {p}" == slow for _, m, p in app.requests))
    changes = [(e.action, e.detail) for e in net.events if e.toxic == TOXIC]
    assert changes == [ADDED, ("toxic removed", removed)]
    assert app.toxic_names("openai") == []


@pytest.mark.anyio
async def test_cleanup_that_cannot_finish_is_reported_with_the_command_to_finish_it(
    fake: tuple[FakeToxiproxy, str],
) -> None:
    app, url = fake
    net = NetworkFaults.from_faults([latency(url)], call_timeout=10)
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
async def test_no_network_faults_means_no_toxiproxy_at_all() -> None:
    net = NetworkFaults.from_faults([parse_fault({"kind": "outage"})])
    await net.check()  # nothing to reach: no error even with no Toxiproxy anywhere
    async with net.injecting() as same:
        assert same is net
    assert net.events == []
