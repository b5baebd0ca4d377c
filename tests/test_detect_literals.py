"""AnyLiteral: one pass for a few byte strings (the UTF-16 markers the scanner looks
for before reading a binary's every other byte), with Hyperscan and without."""

from __future__ import annotations

import sys

import pytest

from keyscope.detect.literals import AnyLiteral
from keyscope.pipeline import UTF16_MARKERS

CASES = [
    (b"", False),
    (b"plain text with sig and AccountKey", False),  # 8-bit text: no UTF-16 marker
    (b"s", False),  # a prefix of a marker ending in NUL bytes is no match
    (b"\xca\xfe\xba\xbe\0\0s\0i\0", False),  # cut short
    (b"\xca\xfe\xba\xbe\0\0s\0i\0g\0=\0", True),
    ("x;AccountKey=abc".encode("utf-16-le"), True),
    (b"\0" * 100_000 + "SharedAccessSignature".encode("utf-16-le"), True),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_found_in_with_hyperscan(data: bytes, expected: bool) -> None:
    pytest.importorskip("hyperscan")
    finder = AnyLiteral(UTF16_MARKERS)
    assert finder.found_in(data) is expected
    finder.found_in(b"")
    assert finder._db is not None  # the Hyperscan path was taken


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_found_in_without_hyperscan(
    data: bytes, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # import hyperscan: ImportError
    finder = AnyLiteral(UTF16_MARKERS)
    assert finder.found_in(data) is expected
    assert finder._db is None


def test_empty_literals_are_refused() -> None:
    with pytest.raises(ValueError):
        AnyLiteral([b"a", b""])
