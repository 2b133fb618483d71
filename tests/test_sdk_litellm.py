"""Failure shapes from public bug reports, against the real litellm (1.110) and its Router.

Expected values come from litellm's own source: `litellm_core_utils/exception_mapping_utils.py`
(`_map_azure_exception`: `ContentPolicyViolationError` only when the body's `innererror.code`
is `ResponsibleAIPolicyViolation` or the text matches one of its known phrases, else the
status decides: 400 `BadRequestError`), `router.py` (`content_policy_fallbacks` act on a
`ContentPolicyViolationError` only), and `llms/vertex_ai/gemini` (Gemini requests are sent with
snake_case `function_declarations`; a stream line that is not JSON ends the answer).
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import openai
import pytest

import aichaos
from sdk_support import API_KEY, MESSAGES, OPENAI_TOOLS

AZURE = "https://example-resource.openai.azure.com"
BACKENDS = {"azure": "azure", "openai": "openai", "gemini": "gemini"}
AZURE_PARAMS: dict[str, Any] = {
    "model": "azure/gpt-4o",
    "api_base": AZURE,
    "api_key": API_KEY,
    "api_version": "2024-10-21",
}


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    """litellm, imported by the tests that use it, not at collection (every xdist worker
    collects every module). conftest.py keeps it from fetching its cost map on import."""
    import litellm

    return litellm


def prompt_filter(reason: str | None) -> dict[str, Any]:
    return {"kind": "content_filter", "on": "prompt", "reason": reason, "backend": "azure"}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (None, "ContentPolicyViolationError"),
        ("ResponsibleAIPolicyViolation", "ContentPolicyViolationError"),
        ("ContentFiltered", "BadRequestError"),
    ],
)
def test_azure_prompt_filter_mapping(
    litellm: ModuleType, reason: str | None, expected: str
) -> None:
    with (
        aichaos.inject([prompt_filter(reason)], backends=BACKENDS) as chaos,
        pytest.raises(litellm.BadRequestError) as info,
    ):
        litellm.completion(messages=MESSAGES, **AZURE_PARAMS)
    assert type(info.value) is getattr(litellm, expected)
    assert info.value.status_code == 400
    assert len(chaos.attempts) == 1


def test_router_falls_back_only_for_the_shape_litellm_recognises(litellm: ModuleType) -> None:
    """The ContentFiltered variant is a real bug: the Router's content-policy fallback never
    fires for it, and the app gets a BadRequestError instead of the fallback's answer."""
    router = litellm.Router(
        model_list=[
            {"model_name": "primary", "litellm_params": AZURE_PARAMS},
            {
                "model_name": "backup",
                "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": API_KEY},
            },
        ],
        content_policy_fallbacks=[{"primary": ["backup"]}],
        num_retries=0,
    )
    with aichaos.inject([prompt_filter(None)], backends=BACKENDS) as chaos:
        answer = router.completion(model="primary", messages=MESSAGES)
    assert answer.choices[0].message.content
    assert [a.backend for a in chaos.attempts] == ["azure", "openai"]

    with (
        aichaos.inject([prompt_filter("ContentFiltered")], backends=BACKENDS) as chaos,
        pytest.raises(litellm.BadRequestError) as info,
    ):
        router.completion(model="primary", messages=MESSAGES)
    assert not isinstance(info.value, litellm.ContentPolicyViolationError)
    assert [a.backend for a in chaos.attempts] == ["azure"]  # no fallback


def test_azure_content_filtered_variant_with_the_openai_sdk() -> None:
    with (
        aichaos.inject([prompt_filter("ContentFiltered")], backends=BACKENDS),
        openai.AzureOpenAI(api_key=API_KEY, api_version="2024-10-21", azure_endpoint=AZURE) as sdk,
        pytest.raises(openai.BadRequestError) as info,
    ):
        sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    body = info.value.body
    assert isinstance(body, dict) and body["innererror"]["code"] == "ContentFiltered"
    assert body["type"] is None and body["status"] == 400
    assert "OpenAI\u2019s content management policy" in body["message"]


def test_gemini_snake_case_tools_get_a_tool_call(litellm: ModuleType) -> None:
    """litellm sends `function_declarations` (snake_case), which the API accepts."""
    with aichaos.inject(backends=BACKENDS) as chaos:
        answer = litellm.completion(
            model="gemini/gemini-2.5-flash",
            messages=MESSAGES,
            tools=OPENAI_TOOLS,
            api_key=API_KEY,
        )
    calls = answer.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]
    assert chaos.attempts[0].backend == "gemini"


def test_gemini_stall_with_keepalive_keeps_the_whole_answer(litellm: ModuleType) -> None:
    """Google sends no keep-alive lines; one would end litellm's answer early, silently."""
    fault = {"kind": "stream_stall", "after": 1, "stall": 0.3, "keepalive": 0.05}
    with aichaos.inject(backends=BACKENDS):
        baseline = litellm.completion(
            model="gemini/gemini-2.5-flash", messages=MESSAGES, api_key=API_KEY
        )
    started = time.monotonic()
    with aichaos.inject([fault], backends=BACKENDS):
        chunks = list(
            litellm.completion(
                model="gemini/gemini-2.5-flash", messages=MESSAGES, api_key=API_KEY, stream=True
            )
        )
    assert time.monotonic() - started >= 0.3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == baseline.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
