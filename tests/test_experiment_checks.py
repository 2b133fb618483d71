"""Hypothesis checks judged on hand-made call records: each reports value, bound and verdict."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aichaos.experiment.checks.base import Check, CheckContext, check_kinds
from aichaos.experiment.metrics import percentile, phase_metrics
from aichaos.experiment.results import CallRecord
from aichaos.experiment.schema import experiment_json_schema
from aichaos.experiment.stopping import StopMonitor
from aichaos.faults.base import fault_kinds
from aichaos.records import Attempt
from aichaos.report.summary import check_value

CONTRACT_CHECKS = {
    "success_rate",
    "error_rate",
    "latency",
    "ttft",
    "served_by",
    "attempts",
    "status",
    "response",
    "recovery_time",
    "python",
    "incomplete_answers",
    "prometheus",
}


def attempt(backend: str = "openai", status: int = 200, faults: tuple[str, ...] = ()) -> Attempt:
    return Attempt(
        backend=backend,
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        stream=False,
        faults=list(faults),
        status=status,
        duration=0.01,
        outcome="complete",
    )


def call(
    n: int,
    *,
    ok: bool = True,
    phase: str = "inject",
    started: float | None = None,
    duration: float = 0.1,
    status: int | None = 200,
    error: str | None = None,
    output: str = "Fine.",
    ttft: float | None = None,
    attempts: list[Attempt] | None = None,
) -> CallRecord:
    start = float(n) if started is None else started
    record = CallRecord(
        id=f"{phase}-{n}",
        phase=phase,
        index=n,
        prompt="hi",
        started=start,
        ended=start + duration,
        ok=ok,
        status=status if ok else (status if status != 200 else None),
        error=None if ok else (error or "openai.InternalServerError"),
        output=output if ok else None,
        ttft=ttft,
    )
    record.attempts = attempts if attempts is not None else [attempt()]
    return record


def build(data: dict[str, Any]) -> Check:
    return check_kinds()[data["check"]].model_validate(data)


def judge(data: dict[str, Any], calls: list[CallRecord], **ctx: Any) -> tuple[Any, bool, str]:
    result = build(data).evaluate(CheckContext(calls, **ctx))
    return result.value, result.passed, result.detail


def test_every_contract_check_is_registered() -> None:
    assert set(check_kinds()) == CONTRACT_CHECKS


def test_the_schema_lists_every_registered_fault_kind_and_check() -> None:
    schema = experiment_json_schema()
    faults = schema["properties"]["faults"]["items"]["discriminator"]["mapping"]
    checks = schema["properties"]["hypothesis"]["items"]["discriminator"]["mapping"]
    assert set(faults) == set(fault_kinds())
    assert set(checks) == CONTRACT_CHECKS


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) is None


def test_success_rate() -> None:
    calls = [call(i) for i in range(9)] + [call(9, ok=False, status=503)]
    assert judge({"check": "success_rate", "min": 0.9}, calls)[:2] == (0.9, True)
    _, passed, detail = judge({"check": "success_rate", "min": 0.95}, calls)
    assert not passed and "9 of 10" in detail and "InternalServerError" in detail
    assert judge({"check": "success_rate", "min": 0.5}, [])[1] is False  # nothing proven


def test_success_rate_limited_to_a_phase() -> None:
    calls = [call(0, phase="baseline"), call(1, ok=False, phase="inject")]
    result = build({"check": "success_rate", "min": 1, "phase": "baseline"}).evaluate(
        CheckContext(calls)
    )
    assert result.passed and result.phase == "baseline" and result.bound == ">= 1"


def test_error_rate_with_status_and_error_filters() -> None:
    calls = [
        call(0),
        call(1, ok=False, status=429, error="openai.RateLimitError"),
        call(2, ok=False, status=503, error="openai.InternalServerError"),
        call(3, ok=False, status=None, error="timeout"),
    ]
    assert judge({"check": "error_rate", "max": 0.5}, calls)[:2] == (0.75, False)
    assert judge({"check": "error_rate", "max": 0.25, "status": 429}, calls)[:2] == (0.25, True)
    assert judge({"check": "error_rate", "max": 0.3, "status": ["5xx"]}, calls)[:2] == (0.25, True)
    assert judge({"check": "error_rate", "max": 0, "error": "time*"}, calls)[:2] == (0.25, False)


def test_status_allowed_and_forbidden() -> None:
    calls = [call(0), call(1, ok=False, status=503), call(2, ok=False, status=None)]
    value, passed, detail = judge({"check": "status", "allowed": ["2xx"]}, calls)
    assert (value, passed) == (1, False) and "503" in detail
    assert judge({"check": "status", "forbidden": [429]}, calls)[1] is True
    assert judge({"check": "status", "forbidden": ["5xx"]}, calls)[1] is False


def test_latency_and_ttft() -> None:
    calls = [call(i, duration=0.1 * (i + 1), ttft=0.01 * (i + 1)) for i in range(10)]
    value, passed, _ = judge({"check": "latency", "percentile": 90, "max": "901ms"}, calls)
    assert value == pytest.approx(0.9) and passed
    assert judge({"check": "latency", "max": "500ms"}, calls)[1] is False
    assert judge({"check": "ttft", "percentile": 50, "max": "50ms"}, calls)[:2] == (
        pytest.approx(0.05),
        True,
    )
    no_streams = [call(0)]
    value, passed, detail = judge({"check": "ttft", "max": "1s"}, no_streams)
    assert value is None and not passed and "streamed" in detail


def test_served_by_shares() -> None:
    calls = [call(i, attempts=[attempt("openai", 500), attempt("claude")]) for i in range(8)]
    calls += [call(8, attempts=[attempt("openai")]), call(9, ok=False, attempts=[])]
    value, passed, detail = judge(
        {"check": "served_by", "backend": "claude", "min_share": 0.8}, calls
    )
    assert (value, passed) == (0.8, True) and "claude 8" in detail
    assert judge({"check": "served_by", "backend": "openai", "max_share": 0.05}, calls)[1] is False


def test_served_by_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="min_share"):
        build({"check": "served_by", "backend": "x"})


def test_attempts_max_and_percentile() -> None:
    calls = [call(i, attempts=[attempt()] * (3 if i == 0 else 1)) for i in range(10)]
    value, passed, detail = judge({"check": "attempts", "max": 2}, calls)
    assert (value, passed) == (3, False) and "12 attempts for 10 calls" in detail
    assert judge({"check": "attempts", "max": 1, "percentile": 90}, calls)[:2] == (1, True)


def test_response_conditions() -> None:
    calls = [
        call(0, output='{"answer": "yes"}'),
        call(1, output='{"answer": 3}'),
        call(2, output="not json"),
        call(3, ok=False),
    ]
    schema = {
        "type": "object",
        "required": ["answer"],
        "properties": {"answer": {"type": "string"}},
    }
    value, passed, detail = judge({"check": "response", "json_schema": schema}, calls)
    assert value == pytest.approx(1 / 3) and not passed and "schema" in detail
    assert judge({"check": "response", "json_schema": schema, "min_share": 0.3}, calls)[1]
    assert judge({"check": "response", "contains": "answer"}, calls)[:2] == (
        pytest.approx(2 / 3),
        False,
    )
    assert judge({"check": "response", "not_contains": ["Error code"]}, calls)[1] is True
    assert judge({"check": "response", "regex": "^\\{", "min_share": 0.6}, calls)[1] is True
    empty = [call(0, output="  ")]
    assert judge({"check": "response", "not_empty": True}, empty)[2].endswith("empty answer")
    assert judge({"check": "response", "contains": "YES", "ignore_case": True}, calls)[0] > 0


def test_response_needs_a_condition() -> None:
    with pytest.raises(ValueError, match="json_schema"):
        build({"check": "response"})


def test_recovery_time() -> None:
    calls = [call(0, ok=False, started=10.0), call(1, ok=False, started=10.2)]
    calls += [call(2, started=10.4, duration=0.1), call(3, started=10.6)]
    data = {"check": "recovery_time", "max": "1s"}
    value, passed, detail = judge(data, calls, fault_end=10.0)
    assert value == pytest.approx(0.5) and passed and "after 2 failed calls" in detail
    value, passed, _ = judge({**data, "consecutive": 3}, calls, fault_end=10.0)
    assert value == math.inf and not passed
    assert judge(data, calls, fault_end=None)[1] is False
    assert "no calls after" in judge(data, calls, fault_end=20.0)[2]


def test_recovery_time_of_one_backend_ignores_a_fallback_that_answers() -> None:
    fallback, primary = [attempt("fallback")], [attempt("primary")]
    calls = [call(0, started=10.0, attempts=fallback), call(1, started=10.2, attempts=fallback)]
    calls += [call(2, started=10.4, duration=0.3, attempts=primary)]
    data = {"check": "recovery_time", "max": "500ms", "backend": "primary"}
    value, passed, detail = judge(data, calls, fault_end=10.0)
    assert value == pytest.approx(0.7) and not passed
    assert detail == "'primary' serving returned 700ms after the faults ended after 2 other calls"
    assert judge({**data, "backend": None}, calls, fault_end=10.0)[0] == pytest.approx(0.1)
    value, _, detail = judge({**data, "backend": "other"}, calls, fault_end=10.0)
    assert value == math.inf and detail.startswith("'other' serving did not return in 3 calls")
    assert check_value("recovery_time", value) == "never"
    assert check_value("response", 0.615856) == "61.6%"


def test_python_check_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [call(0), call(1)]

    def bind(name: str, **extra: Any) -> Check:
        import experiment_targets

        check = build({"check": "python", "function": f"experiment_targets:{name}", **extra})
        check.bind(getattr(experiment_targets, name))  # type: ignore[attr-defined]
        return check

    ctx = CheckContext(calls)
    assert bind("count_calls", max=2).evaluate(ctx).passed
    assert not bind("count_calls", max=1).evaluate(ctx).passed
    result = bind("all_ok").evaluate(ctx)
    assert result.passed and result.detail == "2 calls"
    broken = bind("broken_check").evaluate(ctx)
    assert not broken.passed and "ValueError: boom" in broken.detail


def test_phase_metrics() -> None:
    calls = [
        call(0, attempts=[attempt("openai", 500, ("outage",)), attempt("claude")]),
        call(1, ok=False, status=503, attempts=[attempt("openai", 503, ("outage",))]),
    ]
    metrics = phase_metrics(calls, elapsed=2.0)
    assert metrics["requests"] == 2 and metrics["ok"] == 1 and metrics["success_rate"] == 0.5
    assert metrics["faults"] == {"outage": 2}
    assert metrics["served_by"] == {"claude": 1}
    assert metrics["errors"] == {"openai.InternalServerError": 1}
    assert metrics["attempts"] == {"total": 3, "per_call": 1.5, "max": 2}
    assert metrics["throughput"] == 1.0


def test_stop_monitor_needs_enough_calls_in_the_window() -> None:
    condition = build({"check": "success_rate", "min": 0.5, "window": "1s", "min_calls": 4})
    monitor = StopMonitor([condition])
    for i in range(3):
        monitor.feed(call(i, ok=False, started=10 + i * 0.1, duration=0.01))
    assert monitor.fired(now=10.5) is None  # 3 calls: not enough to judge
    monitor.feed(call(3, ok=False, started=10.35, duration=0.01))
    reason = monitor.fired(now=10.5)
    assert reason is not None and "success_rate" in reason and "0 of 4" in reason
    assert monitor.fired(now=20.0) is None  # the failures left the window
