"""aiohttp, requests and the clients built on them, intercepted on a real socket.

Every connection and stream fault must give each client the exception class and the
number of attempts it gets through `aichaos proxy`: in-process their requests go to
the injection's loopback listener, so the client's own socket code names the failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
import requests

import aichaos
from aichaos.faults.base import parse_fault
from aichaos.proxy import RunningProxy, serve_proxy_in_thread
from aichaos.records import call_scope
from proxy_helpers import make_session, settled
from socket_clients import CHAT, CLIENTS, OPENAI

BACKENDS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}

# fault, the SDKs' max_retries and the clients' read timeout: short only where the fault
# hangs (then no retries: each attempt waits it out); long elsewhere, so load cannot time out
FAULTS: dict[str, tuple[dict[str, Any], int, float]] = {
    "connection_reset": ({"kind": "connection_reset"}, 1, 30),
    "connection_reset_mid_body": ({"kind": "connection_reset", "after_bytes": 300}, 1, 30),
    "connection_refused": ({"kind": "connection_refused"}, 1, 30),
    "timeout": ({"kind": "timeout"}, 0, 1.5),
    "stream_cut_drop": ({"kind": "stream_cut", "after": 2, "mode": "drop"}, 1, 30),
    "stream_cut_error_event": ({"kind": "stream_cut", "after": 2, "mode": "error_event"}, 1, 30),
    "stream_cut_no_terminator": (
        {"kind": "stream_cut", "after": 2, "mode": "no_terminator"},
        1,
        30,
    ),
    "stream_stall": ({"kind": "stream_stall", "after": 2, "stall": "60s"}, 0, 1.5),
    "latency": ({"kind": "latency", "delay": "50ms"}, 1, 30),
    "slow_stream": ({"kind": "slow_stream", "ttft": "50ms", "inter_token": "5ms"}, 1, 30),
}
# Faults after which no client can read a whole answer.
ALWAYS_FAILS = {"connection_reset", "connection_refused", "timeout", "stream_stall"}


def outcome(call: Callable[[], None]) -> str:
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__module__}.{type(exc).__name__}"
    return "ok"


# Through the proxy each client has a backend of its own, so attempts are counted per client.
PROXY_BACKENDS = {client: provider for client, (provider, _) in CLIENTS.items()}


@pytest.fixture(scope="module")
def proxy() -> Iterator[RunningProxy]:
    with serve_proxy_in_thread(make_session({**BACKENDS, **PROXY_BACKENDS})) as running:
        yield running


def _through_proxy(proxy: RunningProxy, client: str, *options: float) -> tuple[str, int]:
    seen = outcome(lambda: CLIENTS[client][1](proxy.backend_url(client), *options))
    return seen, sum(a.backend == client for a in settled(proxy.session))


def _in_process(chaos: aichaos.Injection, client: str, *options: float) -> tuple[str, int]:
    with call_scope(client):  # attempts are told apart by call, across the listener's socket
        seen = outcome(lambda: CLIENTS[client][1](None, *options))
    return seen, sum(a.call_id == client for a in chaos.attempts)


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_client_fails_in_process_as_through_the_proxy(name: str, proxy: RunningProxy) -> None:
    fault, retries, timeout = FAULTS[name]
    proxy.session.engine.clear()
    proxy.session.engine.add(parse_fault(dict(fault)))
    proxy.session.recorder.clear()
    with aichaos.inject(backends=BACKENDS) as chaos:
        requests.post(f"{OPENAI}/v1/chat/completions", json=CHAT).close()  # listener started
        chaos.add(fault)
        chaos.recorder.clear()
        with ThreadPoolExecutor(2 * len(CLIENTS)) as pool:  # hangs overlap: the test waits once
            proxied = {c: pool.submit(_through_proxy, proxy, c, retries, timeout) for c in CLIENTS}
            local = {c: pool.submit(_in_process, chaos, c, retries, timeout) for c in CLIENTS}
        through_proxy = {c: future.result() for c, future in proxied.items()}
        in_process = {c: future.result() for c, future in local.items()}

    assert in_process == through_proxy
    assert all(attempts >= 1 for _, attempts in in_process.values())
    if name in ALWAYS_FAILS:
        assert all(seen != "ok" for seen, _ in in_process.values()), in_process


def test_sdk_aiohttp_transport_drops_are_timeouts_as_in_production() -> None:
    """openai's aiohttp adapter maps a dropped connection (a ClientConnectionError) to
    ConnectTimeout: the app sees APITimeoutError, not APIConnectionError."""
    import openai

    with aichaos.inject([{"kind": "connection_reset"}]) as chaos:
        result = outcome(lambda: CLIENTS["openai-aiohttp"][1](None, 0, 30))
    assert result == "openai.APITimeoutError"
    assert [a.error for a in chaos.attempts] == ["connection_reset"]
    assert openai.APITimeoutError.__module__ == "openai"


def test_requests_and_aiohttp_stream_from_the_mock_with_records_and_calls() -> None:
    with aichaos.inject() as chaos:
        with (
            call_scope("sync-call") as sync_scope,
            requests.post(f"{OPENAI}/v1/chat/completions", json=CHAT, stream=True) as r,
        ):
            events = [line for line in r.iter_lines() if line.startswith(b"data: ")]
            assert r.url == f"{OPENAI}/v1/chat/completions"  # as the app asked

        async def run() -> bytes:
            with call_scope("async-call") as scope:
                async with (
                    aiohttp.ClientSession(base_url=OPENAI) as client,
                    client.post("/v1/chat/completions", json=CHAT) as response,
                ):
                    body = await response.read()
            assert [a.call_id for a in scope.attempts] == ["async-call"]
            return body

        body = asyncio.run(run())
    assert r.status_code == 200
    assert events[-1] == b"data: [DONE]"
    assert body.rstrip().endswith(b"data: [DONE]")
    assert [a.call_id for a in chaos.attempts] == ["sync-call", "async-call"]
    assert sync_scope.attempts == [chaos.attempts[0]]  # the very scope object, across the socket
    assert all(a.stream and a.status == 200 and a.error is None for a in chaos.attempts)
    assert all(a.ttft is not None for a in chaos.attempts)


def test_unclaimed_hosts_and_no_injection_leave_the_libraries_alone(
    proxy: RunningProxy,
) -> None:
    proxy.session.engine.clear()
    proxy.session.recorder.clear()
    with aichaos.inject([{"kind": "outage"}]) as chaos:
        response = requests.get(proxy.base_url + "/", timeout=5)  # not a claimed host
    assert response.json()["aichaos"] == "proxy"
    assert chaos.attempts == []
    assert requests.adapters.HTTPAdapter.send.__module__ == "requests.adapters"
    assert aiohttp.ClientSession._request.__module__ == "aiohttp.client"
