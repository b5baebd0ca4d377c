"""docs/architecture.md must not go stale: every source path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# src/keyscope/... up to the first character that cannot be part of a path
_PATH = re.compile(r"src/keyscope(?:/[A-Za-z0-9_.*-]+)*/?")


def named_paths(text: str) -> list[str]:
    return sorted({m.group(0).rstrip(".") for m in _PATH.finditer(text)})


def test_every_named_source_path_exists() -> None:
    paths = named_paths(ARCHITECTURE.read_text(encoding="utf-8"))
    assert len(paths) >= 30, "the document should name the modules it describes"
    missing = [p for p in paths if not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_path_pattern() -> None:
    text = "see `src/keyscope/detect/rules/*.toml`, src/keyscope/scan.py. and src/keyscope/report/"
    assert named_paths(text) == [
        "src/keyscope/detect/rules/*.toml",
        "src/keyscope/report/",
        "src/keyscope/scan.py",
    ]
