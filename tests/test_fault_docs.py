"""The fault reference in docs/ is generated from the registry and must stay in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from aichaos.commands.faults import describe, render_markdown
from aichaos.faults.base import Fault, fault_kinds

ROOT = Path(__file__).resolve().parents[1]


def test_docs_faults_md_is_generated_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)  # the network fault's default reads it
    generated = render_markdown(describe())
    committed = (ROOT / "docs" / "faults.md").read_text()
    assert committed == generated, "run: aichaos faults --markdown > docs/faults.md"


def test_every_kind_and_parameter_is_documented() -> None:
    text = (ROOT / "docs" / "faults.md").read_text()
    common = set(Fault.model_fields)
    for kind, cls in fault_kinds().items():
        assert f"## `{kind}`" in text
        assert cls.__doc__ and len(cls.__doc__.split()) > 15, f"{kind} needs a real docstring"
        for name, info in cls.model_fields.items():
            if name not in common:
                assert f"| `{name}` |" in text
                assert info.description, f"{kind}.{name} has no description"
