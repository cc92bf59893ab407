"""docs/fidelity.md has one section per registered strategy, with a reference and a settings table."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from nni_nas_bench.strategies import list_strategies

DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^## `([a-z0-9_]+)`\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.mark.parametrize("name", list_strategies())
def test_every_registered_strategy_has_a_section(name: str) -> None:
    sections = _sections()
    assert name in sections, f"docs/fidelity.md has no '## `{name}`' section: add its reference and differences"
    body = sections[name]
    assert "Reference:" in body and "to be written" not in body, f"the {name} section names no reference"
    assert "| setting |" in body.lower(), f"the {name} section has no 'setting | reference | ours | why' table"
