"""The README points at files that exist: a new user copies its commands as they are."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_example_and_script_the_readme_names_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/])((?:examples|scripts)/[\w./-]+\.(?:yaml|sh|py|pov))", text))
    assert "examples/jobs/simple.yaml" in named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"README names files that do not exist: {missing}"
