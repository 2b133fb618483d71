"""The pytest plugin, exercised with pytest's own `pytester`."""

from __future__ import annotations

import pytest

APP = '''
import anthropic
import openai

def answer(prompt: str) -> str:
    """A small app that falls back from OpenAI to Claude."""
    try:
        reply = openai.OpenAI(api_key="sk-test", max_retries=1).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        return reply.choices[0].message.content or ""
    except openai.APIError:
        message = anthropic.Anthropic(api_key="sk-ant-test").messages.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": prompt}]
        )
        return message.content[0].text

def answer_without_fallback(prompt: str) -> str:
    reply = openai.OpenAI(api_key="sk-test", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""
'''


@pytest.fixture
def app(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(fallback_app=APP)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.syspathinsert()
    return pytester


def test_a_ten_line_resilience_test_passes_when_the_fallback_works(app: pytest.Pytester) -> None:
    app.makepyfile(
        test_resilience="""
        from fallback_app import answer

        def test_openai_outage_falls_back_to_claude(chaos):
            chaos.inject("outage", backend="openai")
            assert answer("What is 2+2?")
            assert chaos.served_by == ["anthropic"]
            assert [a.status for a in chaos.attempts_to("openai")] == [500, 500]
            assert chaos.faults_hit == ["outage", "outage"]
        """
    )
    result = app.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1)


def test_a_broken_fallback_fails_and_the_report_shows_faults_and_attempts(
    app: pytest.Pytester,
) -> None:
    app.makepyfile(
        test_fragile="""
        from fallback_app import answer_without_fallback

        def test_outage(chaos):
            chaos.inject("rate_limit", backend="openai", retry_after="10ms")
            answer_without_fallback("hello")
        """
    )
    result = app.runpytest_inprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RateLimitError*",
            "*aichaos*",
            "*1 upstream attempt(s)*",
            "*openai*rate_limit(requests)*429*",
        ]
    )


def test_marker_declares_faults_backends_and_seed(app: pytest.Pytester) -> None:
    app.makepyfile(
        test_marked="""
        import pytest
        from fallback_app import answer

        @pytest.mark.chaos({"kind": "outage", "backend": "openai"}, seed=3)
        def test_with_fixture(chaos):
            answer("hi")
            assert chaos.served_by == ["anthropic"]

        @pytest.mark.chaos(faults=[{"kind": "outage", "backend": "openai"}])
        def test_marker_alone_injects():
            import openai
            client = openai.OpenAI(api_key="sk-test", max_retries=0)
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="m", messages=[])

        def test_unmarked_tests_are_not_intercepted():
            import httpx
            from aichaos.intercept import patch
            assert not patch.is_installed()
        """
    )
    result = app.runpytest_inprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_async_tests_with_anyio_and_pytest_asyncio(app: pytest.Pytester) -> None:
    app.makepyfile(
        test_async="""
        import anthropic
        import pytest

        async def claude(prompt):
            client = anthropic.AsyncAnthropic(api_key="sk-ant-test", max_retries=2)
            message = await client.messages.create(
                model="claude-x", max_tokens=32, messages=[{"role": "user", "content": prompt}]
            )
            return message.content[0].text

        @pytest.mark.anyio
        async def test_with_anyio(chaos):
            chaos.inject("outage", backend="anthropic", first=1)
            assert await claude("hi")
            assert [a.status for a in chaos.attempts] == [529, 200]

        @pytest.mark.asyncio
        async def test_with_pytest_asyncio(chaos):
            async with chaos.call("one"):
                chaos.inject("rate_limit", backend="anthropic", first=1, retry_after=None)
                assert await claude("hi")
            assert [c.id for c in chaos.calls] == ["one"]
            assert [a.status for a in chaos.calls[0].attempts] == [429, 200]

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    result = app.runpytest_inprocess("-q")
    result.assert_outcomes(passed=2)


def test_faults_and_records_do_not_leak_between_tests_under_xdist(app: pytest.Pytester) -> None:
    tests = {}
    for n in range(6):
        faulty = n % 2 == 0
        body = 'chaos.inject("outage", backend="openai")' if faulty else "pass"
        expected = "anthropic" if faulty else "openai"
        tests[f"test_iso_{n}"] = f'''
        from fallback_app import answer

        def test_{n}(chaos):
            {body}
            answer("call {n}")
            assert chaos.served_by == ["{expected}"]
            assert all(a.call_id.endswith("test_{n}") for a in chaos.attempts)
        '''
    app.makepyfile(**tests)
    result = app.runpytest_subprocess("-q", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


EXPERIMENT = """
version: 1
title: {title}
backends:
  openai: {{provider: openai}}
  claude: {{provider: anthropic}}
target:
  python: fallback_app:{function}
load: {{requests: 6, concurrency: 2}}
phases:
  baseline: {{requests: 2}}
  recovery: {{requests: 2}}
faults:
  - backend: openai
    kind: outage
hypothesis:
  - check: success_rate
    min: 0.99
"""


def _experiments(app: pytest.Pytester) -> None:
    app.mkdir("chaos")
    good = EXPERIMENT.format(title="fallback holds", function="answer")
    bad = EXPERIMENT.format(title="no fallback", function="answer_without_fallback")
    (app.path / "chaos" / "good.yaml").write_text(good)
    (app.path / "chaos" / "bad.yaml").write_text(bad)
    (app.path / "chaos" / "docker-compose.yml").write_text("services: {app: {image: x}}\n")


def test_experiments_are_collected_with_the_aichaos_flag(app: pytest.Pytester) -> None:
    _experiments(app)
    result = app.runpytest_inprocess("--aichaos", "chaos", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*experiment failed (exit 1)*", "*FAIL  success_rate >= 0.99: measured *%*"]
    )
    assert "docker-compose" not in result.stdout.str()


def test_experiments_are_collected_from_the_ini_option_and_invalid_ones_explain(
    app: pytest.Pytester,
) -> None:
    _experiments(app)
    (app.path / "chaos" / "bad.yaml").write_text(
        EXPERIMENT.format(title="typo", function="answer").replace("min: 0.99", "mni: 0.99")
    )
    app.makeini(
        "[pytest]\naichaos_experiments = chaos\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = app.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*invalid experiment (exit 2)*", "*bad.yaml:*mni*min*"])


def test_the_ten_line_example_in_the_docs_runs_as_written(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "pytest.md").read_text()
    example = docs.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(example.strip().splitlines()) <= 10
    pytester.makepyfile(
        myapp="""
        import anthropic, openai

        def answer(prompt):
            try:
                reply = openai.OpenAI(api_key="sk-test").chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": prompt}])
                return reply.choices[0].message.content
            except openai.APIError:
                return anthropic.Anthropic(api_key="sk-ant").messages.create(
                    model="claude-sonnet-4-5", max_tokens=100,
                    messages=[{"role": "user", "content": prompt}]).content[0].text
        """
    )
    pytester.makepyfile(test_example=example)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1)


def test_faults_apply_on_top_of_routes_mocked_with_respx(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_respx="""
        import httpx, openai, pytest, respx

        COMPLETION = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "from respx"}}]}
        BACKENDS = {"llm": {"provider": "openai", "upstream": "https://llm.internal"}}

        @respx.mock
        @pytest.mark.chaos(backends=BACKENDS)
        def test_respx_route_is_the_upstream_and_faults_apply_on_top(chaos):
            route = respx.post("https://llm.internal/v1/chat/completions").respond(
                json=COMPLETION)
            client = openai.OpenAI(base_url="https://llm.internal/v1", api_key="k",
                                   http_client=httpx.Client(), max_retries=0)
            ask = lambda: client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}])
            assert ask().choices[0].message.content == "from respx"
            chaos.inject("truncated", backend="llm", after=1)
            assert ask().choices[0].finish_reason == "length"
            chaos.clear()
            chaos.inject("outage", backend="llm")
            with pytest.raises(openai.InternalServerError):
                ask()
            assert route.call_count == 2  # the outage answered without calling the upstream
            assert [a.backend for a in chaos.attempts] == ["llm"] * 3
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1)


IMPORT_TIME_CLIENT = """
import openai

client = openai.OpenAI()  # built at import time, from OPENAI_API_KEY

def test_answer(chaos):
    messages = [{"role": "user", "content": "hi"}]
    reply = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert reply.choices[0].message.content
    assert [a.backend for a in chaos.attempts] == ["openai"]
"""


@pytest.mark.parametrize("enabled", [True, False])
def test_apps_building_sdk_clients_at_import_are_collected_without_keys(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.setenv(name, "restored-after-the-test")
        monkeypatch.delenv(name)
    ini = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    pytester.makeini(ini if enabled else f"{ini}aichaos_placeholder_keys = false\n")
    pytester.makepyfile(test_import_time=IMPORT_TIME_CLIENT)
    result = pytester.runpytest_inprocess("-q")
    if enabled:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*OPENAI_API_KEY*"])


def test_fault_mistakes_fail_the_test_with_a_suggestion_not_a_traceback(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_mistakes="""
        import pytest

        @pytest.mark.chaos("outage")  # a kind name, as chaos.inject takes it
        def test_marker_kind_name(chaos):
            assert [a.fault.kind for a in chaos.injection.engine.faults] == ["outage"]

        @pytest.mark.chaos(kind="latency", delay="1s")  # written like keyword arguments
        def test_marker_keywords(chaos):
            pass

        @pytest.mark.chaos({"kind": "latency", "dealy": "1s"})
        def test_marker_key_typo():
            pass

        def test_inject_kind_typo(chaos):
            chaos.inject("latncy", delay="1s")

        def test_inject_backend_typo(chaos):
            chaos.inject("outage", backend="opnai")
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2, errors=2)
    out = result.stdout.str()
    assert "unknown argument 'kind'" in out and "@pytest.mark.chaos({'kind': 'latency'" in out
    assert "unknown key 'dealy'" in out and "(did you mean 'delay'?)" in out
    assert "unknown fault kind 'latncy' (did you mean 'latency'?)" in out
    assert "unknown backend 'opnai' (did you mean 'openai'?)" in out
    for noise in ("Traceback", "KeyError", "ValidationError", "During handling"):
        assert noise not in out
