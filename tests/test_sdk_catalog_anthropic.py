"""Failure shapes from public bug reports, against the real anthropic SDK (2.x).

Anthropic sends `retry-after` only (no `retry-after-ms`, which is Azure's); anthropic's
`_base_client._calculate_retry_timeout` reads either and sleeps any positive delay.
"""

from __future__ import annotations

import anthropic
import pytest

import aichaos
from sdk_support import API_KEY, CLAUDE, MESSAGES, SdkSleeps


def test_error_retry_after_is_anthropics_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = SdkSleeps().install(monkeypatch)
    fault = {"kind": "error", "status": 500, "retry_after": 0.2}
    with (
        aichaos.inject([fault]) as chaos,
        anthropic.Anthropic(api_key=API_KEY) as client,
        pytest.raises(anthropic.InternalServerError) as info,
    ):
        client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    headers = info.value.response.headers
    assert headers["retry-after"] == "0.2" and "retry-after-ms" not in headers
    assert len(chaos.attempts) == 3
    assert sleeps.of() == pytest.approx([0.2, 0.2])  # the SDK slept the server's delay
