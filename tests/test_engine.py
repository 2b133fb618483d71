"""The fault engine on its own: triggers, seeds and the rate limiter (no I/O)."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from aichaos.faults import FaultEngine, parse_fault
from aichaos.faults.base import fault_kinds
from aichaos.providers import get_provider
from aichaos.wire.exchange import RequestInfo

CONTRACT_KINDS = {
    "error", "outage", "rate_limit", "quota_exhausted", "rate_limiter", "latency", "timeout",
    "connection_reset", "connection_refused", "slow_stream", "stream_cut", "stream_stall",
    "malformed", "content_filter", "truncated", "empty_completion", "bad_tool_call",
    "context_length", "auth_error", "model_not_found", "corrupt_text",
}  # fmt: skip


def chat_request(
    backend: str = "openai", model: str = "gpt-4o", stream: bool = False, **headers: str
) -> RequestInfo:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return RequestInfo(
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
        host="api.openai.com",
        path="/v1/chat/completions",
        query="",
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        body=json.dumps(body).encode(),
        backend=backend,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def hits(engine: FaultEngine, n: int, **request: object) -> list[bool]:
    provider = get_provider("openai")
    out = []
    for _ in range(n):
        req = chat_request(**request)  # type: ignore[arg-type]
        plan = engine.plan(req, provider, provider.dialect_for(req.method, req.path))
        out.append(bool(plan.faults))
    return out


def test_every_contract_fault_kind_is_registered() -> None:
    assert CONTRACT_KINDS - {"network"} <= set(fault_kinds())


def test_unknown_kind_and_bad_parameters_are_rejected() -> None:
    with pytest.raises(KeyError):
        parse_fault({"kind": "outrage"})
    with pytest.raises(ValidationError):
        parse_fault({"kind": "outage", "probability": 1.5})
    with pytest.raises(ValidationError):
        parse_fault({"kind": "rate_limit", "scope": "bananas"})
    with pytest.raises(ValidationError):
        parse_fault({"kind": "latency", "distribution": "lognormal", "median": "1s"})
    with pytest.raises(ValidationError, match="not both"):
        parse_fault({"kind": "outage", "probability": 0.5, "ramp": {"over": "10s"}})


def test_probability_stays_within_a_binomial_bound() -> None:
    n, p = 4000, 0.3
    engine = FaultEngine([parse_fault({"kind": "outage", "probability": p})], seed=11)
    count = sum(hits(engine, n))
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) < 4.5 * sigma  # fails by chance far less than once in 10^5


def test_same_seed_same_faults_different_seed_different_faults() -> None:
    def sequence(seed: int) -> list[bool]:
        faults = [
            parse_fault({"kind": "outage", "probability": 0.5}),
            parse_fault({"kind": "latency", "delay": "1ms", "probability": 0.3}),
        ]
        return hits(FaultEngine(faults, seed=seed), 200)

    assert sequence(3) == sequence(3)
    assert sequence(3) != sequence(4)


def test_first_every_and_backend_selection() -> None:
    first = FaultEngine([parse_fault({"kind": "outage", "first": 2})])
    assert hits(first, 5) == [True, True, False, False, False]
    every = FaultEngine([parse_fault({"kind": "outage", "every": 3})])
    assert hits(every, 7) == [False, False, True, False, False, True, False]
    other = FaultEngine([parse_fault({"kind": "outage", "backend": ["claude", "gemini"]})])
    assert hits(other, 3) == [False, False, False]
    listed = FaultEngine([parse_fault({"kind": "outage", "backend": ["claude", "openai"]})])
    assert all(hits(listed, 3))


def test_window_is_relative_to_injection_start() -> None:
    clock = FakeClock()
    fault = parse_fault({"kind": "outage", "window": {"start": "2s", "duration": "3s"}})
    engine = FaultEngine([fault], clock=clock)
    engine.start()
    seen = []
    for t in (0.0, 1.9, 2.0, 4.9, 5.0, 9.0):
        clock.now = t
        seen.append(hits(engine, 1)[0])
    assert seen == [False, False, True, True, False, False]


def test_a_fault_added_live_counts_its_window_from_when_it_was_added() -> None:
    clock = FakeClock()
    engine = FaultEngine(clock=clock)
    engine.start()
    clock.now = 4.0  # e.g. `aichaos fault add ... window.duration=3s` 4 s after the proxy started
    engine.add(parse_fault({"kind": "outage", "window": {"duration": "3s"}}))
    engine.add(parse_fault({"kind": "latency", "delay": "1ms", "window": {"start": "1s"}}))
    states, kinds = {}, {}
    provider = get_provider("openai")
    for t in (4.0, 5.5, 7.5):
        clock.now = t
        states[t] = [entry["state"] for entry in engine.stats()]
        req = chat_request()
        plan = engine.plan(req, provider, provider.dialect_for(req.method, req.path))
        kinds[t] = [a.fault.kind for a in engine.faults if a.tag in plan.faults]
    assert states == {
        4.0: ["active", "pending"],
        5.5: ["active", "active"],
        7.5: ["expired", "active"],
    }
    assert kinds == {4.0: ["outage"], 5.5: ["outage", "latency"], 7.5: ["latency"]}
    assert [entry["added_at"] for entry in engine.stats()] == [4.0, 4.0]
    engine.start()  # a new start of injection: the faults held count from it
    assert [entry["state"] for entry in engine.stats()] == ["active", "pending"]


def test_two_faults_of_one_kind_keep_apart_in_records_and_a_name_labels_a_fault() -> None:
    engine = FaultEngine(
        [
            parse_fault({"kind": "rate_limit", "backend": "openai"}),
            parse_fault({"kind": "rate_limit", "backend": "openai", "match": {"stream": True}}),
            parse_fault({"kind": "latency", "delay": "1ms", "name": "slow primary"}),
        ]
    )
    assert [entry["label"] for entry in engine.stats()] == [
        "rate_limit(requests)",
        "rate_limit(requests)#f2",
        "slow primary",
    ]
    assert engine.faults[0].fault.backends_text == "openai"
    assert parse_fault({"kind": "outage", "backend": ["a", "b"]}).backends_text == "a, b"


def test_ramp_raises_the_share_over_time() -> None:
    clock = FakeClock()
    fault = parse_fault({"kind": "outage", "ramp": {"from": 0.0, "to": 1.0, "over": "10s"}})
    engine = FaultEngine([fault], clock=clock, seed=5)
    engine.start()
    assert not any(hits(engine, 200))  # t=0: probability 0
    clock.now = 5.0
    middle = sum(hits(engine, 1000))
    assert 400 < middle < 600
    clock.now = 20.0
    assert all(hits(engine, 200))


def test_match_on_path_model_stream_and_header() -> None:
    fault = parse_fault(
        {
            "kind": "outage",
            "match": {
                "path": "/v1/chat/*",
                "model": "gpt-4*",
                "stream": True,
                "headers": {"x-tenant": "blue*"},
            },
        }
    )
    engine = FaultEngine([fault])
    assert hits(engine, 1, stream=True, x_tenant="blue-1") == [True]
    assert hits(engine, 1, stream=False, x_tenant="blue-1") == [False]
    assert hits(engine, 1, stream=True, model="claude-3", x_tenant="blue-1") == [False]
    assert hits(engine, 1, stream=True, x_tenant="red") == [False]


def test_only_one_terminal_fault_acts_but_delays_add_up() -> None:
    faults = [
        parse_fault({"kind": "latency", "delay": "100ms"}),
        parse_fault({"kind": "outage"}),
        parse_fault({"kind": "auth_error"}),
        parse_fault({"kind": "latency", "delay": "50ms"}),
    ]
    provider = get_provider("openai")
    req = chat_request()
    plan = FaultEngine(faults).plan(req, provider, provider.dialect_for(req.method, req.path))
    assert plan.faults == ["latency", "outage", "latency#f4"]  # two latency faults, two labels
    assert plan.reply is not None and plan.reply.status == 500
    assert plan.delay == pytest.approx(0.15)


def test_pause_and_live_changes() -> None:
    engine = FaultEngine()
    fault_id = engine.add(parse_fault({"kind": "outage"}))
    assert hits(engine, 1) == [True]
    engine.paused = True
    assert hits(engine, 1) == [False]
    engine.paused = False
    assert engine.remove(fault_id)
    assert hits(engine, 1) == [False]
    assert not engine.remove(fault_id)


def test_rate_limiter_counts_requests_and_tokens() -> None:
    provider = get_provider("openai")
    engine = FaultEngine([parse_fault({"kind": "rate_limiter", "rpm": 2, "tpm": 100})])
    statuses = []
    for _ in range(3):
        req = chat_request()
        plan = engine.plan(req, provider, provider.dialect_for(req.method, req.path))
        statuses.append(plan.reply.status if plan.reply else 200)
    assert statuses == [200, 200, 429]
    limited = parse_fault({"kind": "rate_limiter", "tpm": 100})
    engine = FaultEngine([limited])
    req = chat_request()
    plan = engine.plan(req, provider, provider.dialect_for(req.method, req.path))
    assert plan.reply is None
    engine.observe(plan, 200, 150)  # the answer used more than the whole budget
    plan = engine.plan(req, provider, provider.dialect_for(req.method, req.path))
    assert plan.reply is not None and plan.reply.status == 429
    assert plan.reply.header("retry-after") is not None
    assert plan.faults == ["rate_limiter"]


def test_latency_distributions_are_seeded_and_plausible() -> None:
    import random

    fault = parse_fault(
        {"kind": "latency", "distribution": "lognormal", "median": "100ms", "p99": "1s"}
    )
    rng = random.Random(1)
    samples = sorted(fault.sample(rng) for _ in range(5000))  # type: ignore[attr-defined]
    assert samples[2500] == pytest.approx(0.1, rel=0.1)
    assert samples[4950] == pytest.approx(1.0, rel=0.25)
    uniform = parse_fault(
        {"kind": "latency", "distribution": "uniform", "min": "10ms", "max": "20ms"}
    )
    draws = [uniform.sample(random.Random(i)) for i in range(100)]  # type: ignore[attr-defined]
    assert all(0.01 <= d <= 0.02 for d in draws)
