"""The hot paths' JSON (orjson underneath) writes and reads exactly what `json` does."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from aichaos.wire.jsoncodec import compact_json, json_bytes, load_json

VALUES: list[Any] = [
    {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": " word"}}], "n": None},
    {"text": "caf\u00e9 \u4f60\u597d \U0001f600 \u2028 </script>", "ok": True},  # escaped, as json
    {"big": 2**70, "small": -(2**63), "max": 2**64 - 1},  # beyond 64 bits: json's digits
    {1: "a", 2.5: "b", None: "c"},  # keys that are not strings: json converts them
    [0.1, 1.5, -0.0, 1e16, 1e300, 123456789.123, 5e-324],
    ["tab\tand\nnewline", 'quote"back\\slash', "\x00\x1f"],
    [],
    {},
    "plain",
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_writes_what_json_writes(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"))
    assert compact_json(value) == expected
    assert json_bytes(value) == expected.encode()


def test_small_floats_are_the_same_number() -> None:
    assert json.loads(json_bytes([1e-05, 2.5e-7])) == [1e-05, 2.5e-7]


TEXTS: list[str | bytes] = [
    b'{"model":"gpt-4o","messages":[{"role":"user","content":"What is 2+2?"}]}',
    '{"a":1,"a":2}',
    b"123456789012345678901234567890",  # beyond 64 bits: an int, as json reads it
    b'{"seed":18446744073709551616}',
    b'["12345678901234567890123"]',  # a long run of digits in a string
    b"[NaN, Infinity, -Infinity]",  # not JSON, but json reads them
    b"1e400",
    b'"\\ud800"',  # a lone surrogate
    "\ud800",
    b"\xef\xbb\xbf{}",  # a UTF-8 BOM
    '{"x": "caf\u00e9"}',
    '{"x": "caf\u00e9"}'.encode("utf-16"),
    b" [1, 2.5, -0] ",
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):  # 2**64 == 2.0**64: compare types too
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_reads_what_json_reads(text: str | bytes) -> None:
    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            load_json(text)
        return
    assert _same(load_json(text), expected)


@pytest.mark.parametrize("text", [b"", b"{", b'{"a":}', b"\xff", "[1,]", b'"\x01"'])
def test_refuses_what_json_refuses(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        load_json(text)
