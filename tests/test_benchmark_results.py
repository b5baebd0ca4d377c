"""Results committed under benchmarks/ must not name files by this machine's absolute paths."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# an absolute path with at least two directories, not part of a URL (file:///x) or a relative path;
# system tools named in a recorded command line (/usr/bin/time) are not the machine's files
ABSOLUTE = re.compile(r"(?<![\w:/.~-])/(?!usr/|bin/|dev/|etc/)(?:[\w.+@-]+/){2,}[\w.+@-]*")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_the_pattern_catches_a_machine_path() -> None:
    assert ABSOLUTE.search("Loading /home/ci/keyscope/benchmarks/.work/x.pkl runs code")
    assert ABSOLUTE.search("/opt/venv/lib/python3.11/site-packages")
    assert not ABSOLUTE.search("tf.print(x, output_stream='file:///tmp/x')")
    assert not ABSOLUTE.search("benchmarks/.venv/lib/python3.11/site-packages")
    assert not ABSOLUTE.search("/usr/bin/time -f '%e %U %S %M'")


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.json")), ids=lambda p: p.name)
def test_results_name_files_relative_to_the_repository(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    leaks = sorted({m.group(0) for s in _strings(document) for m in ABSOLUTE.finditer(s)})
    assert not leaks, f"{path.name} names absolute paths: {leaks[:5]}"
