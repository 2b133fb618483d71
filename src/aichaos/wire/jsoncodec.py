"""Compact JSON for the hot paths (the mock's answers, the proxy's and the transports'
reading of bodies and events): orjson where its output and values are the standard
library's, `json` for the rest.

orjson is 5-10x faster on the small documents of an exchange (docs/performance.md). Where it
differs from `json`, the standard library's result is kept:

* non-ASCII text: `json` escapes it (`\\u00e9`), orjson writes UTF-8. Output that is not
  pure ASCII is encoded again by `json`, so every answer stays byte for byte what it was.
* integers beyond 64 bits and keys that are not strings: orjson refuses them (TypeError),
  `json` encodes them.
* reading: orjson refuses what `json` accepts (`NaN`, `Infinity`, a UTF-8 BOM, lone
  surrogates, UTF-16 input): those go to `json`. It reads an integer beyond 64 bits as a
  float: text holding a run of 20 digits is read by `json`.

Floats are written in their shortest form by both; orjson writes small ones without an
exponent (`0.00001` where `json` writes `1e-05`), the same number. NaN and the infinities,
which JSON has no words for, are written `null` (`json` writes `NaN`, which JSON parsers
refuse).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["compact_json", "json_bytes", "load_json"]

_encode = json.JSONEncoder(separators=(",", ":")).encode
_dumps = orjson.dumps
_loads = orjson.loads
_DIGITS = bytes(0 if 0x30 <= byte <= 0x39 else 1 for byte in range(256))
"""Maps each digit to NUL and every other byte to 1: a run of 20 digits becomes 20 NULs."""
_TWENTY = bytes(20)


def json_bytes(value: Any) -> bytes:
    """`json.dumps(value, separators=(",", ":")).encode()`, faster: byte for byte but for
    floats (written without an exponent) and NaN/infinities (`null`), see above."""
    try:
        data = _dumps(value)
    except TypeError:  # an int beyond 64 bits, a key that is not a string: as json does
        return _encode(value).encode()
    return data if data.isascii() else _encode(value).encode()


def compact_json(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"))`, faster: character for character but for
    floats and NaN/infinities, as `json_bytes`."""
    try:
        data = _dumps(value)
    except TypeError:
        return _encode(value)
    return data.decode() if data.isascii() else _encode(value)


def load_json(text: str | bytes) -> Any:
    """`json.loads(text)`, the same values and the same errors (ValueError), faster."""
    try:
        data = text if isinstance(text, bytes) else text.encode()
    except UnicodeEncodeError:  # a lone surrogate: only json reads it
        return json.loads(text)
    if _TWENTY not in data.translate(_DIGITS):  # (a C scan, unlike a regex: ~20x cheaper)
        try:
            return _loads(data)
        except orjson.JSONDecodeError:
            pass  # json may still read it (NaN, a BOM, ...), or raise its own error
    return json.loads(text)
