"""Failure shapes from public bug reports, against the real anthropic SDK (2.x).

Anthropic sends `retry-after` only, in whole seconds (no `retry-after-ms`, which is Azure's);
anthropic's `_base_client._calculate_retry_timeout` reads either and sleeps any positive delay.
"""

from __future__ import annotations

import anthropic
import pytest

import aichaos
from sdk_support import API_KEY, CLAUDE, MESSAGES, SdkSleeps


def test_error_retry_after_is_anthropics_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = SdkSleeps(0.1).install(monkeypatch)  # records each delay, sleeps a tenth
    fault = {"kind": "error", "status": 500, "retry_after": 0.2}
    with (
        aichaos.inject([fault]) as chaos,
        anthropic.Anthropic(api_key=API_KEY) as client,
        pytest.raises(anthropic.InternalServerError) as info,
    ):
        client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    headers = info.value.response.headers
    # whole seconds, rounded up, as Anthropic sends them; no `retry-after-ms`
    assert headers["retry-after"] == "1" and "retry-after-ms" not in headers
    assert len(chaos.attempts) == 3
    assert sleeps.of() == [1.0, 1.0]  # the SDK slept the server's delay, a whole second
