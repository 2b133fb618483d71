"""Every client claim in docs/faults.md names a test that exists and exercises its fault kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aichaos.faults.base import fault_kinds
from aichaos.faults.kinds.observed import OBSERVED, Observed
from aichaos.providers import provider_names

ROOT = Path(__file__).resolve().parents[1]
ROWS = [(kind, row) for kind, rows in OBSERVED.items() for row in rows]


@pytest.mark.parametrize(("kind", "row"), ROWS, ids=[f"{k}-{r.client}" for k, r in ROWS])
def test_claim_names_a_test_of_its_kind(kind: str, row: Observed) -> None:
    assert kind in fault_kinds()
    assert row.provider in provider_names()
    path, _, name = row.test.partition("::")
    files = sorted({f for pattern in path.split() for f in ROOT.glob(pattern)})
    assert files, f"{row.test}: no such test file"
    texts = [f.read_text() for f in files]
    if name:
        assert any(re.search(rf"^(async )?def {name}\(", t, re.M) for t in texts), row.test
    else:
        assert any(f'"{kind}"' in t for t in texts), f"{row.test} never uses {kind!r}"
