"""Every bundled example runs clean under `pagewalk run --check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pagewalk.cli import main

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_passes_all_checks(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--check", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok"
    assert all(c["ok"] for c in out["checks"])


def test_there_are_at_least_six_examples() -> None:
    assert len(EXAMPLES) >= 6
