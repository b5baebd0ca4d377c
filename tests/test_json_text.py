"""``report/jsontext.indented`` writes what ``json.dumps(indent=2, ensure_ascii=False)``
writes, byte for byte: on a real scan document and on every JSON value kind."""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyscope.report import jsonout
from keyscope.report.interface import FormatOptions
from keyscope.report.jsontext import chunks, indented
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, incident_url, new_key


def _same(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    assert indented(value) == text
    for depth in (0, 1, 2, 5):
        assert "".join(chunks(value, depth)) == text


def test_a_scan_document_is_written_as_json_writes_it(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "README.md").write_text(f"Download: {incident_url('contosoresearch', key)}\n")
    cs = f"DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey={key}"
    (tmp_path / "app.env").write_text(f"STORAGE={cs}\n")
    (tmp_path / "ünïcode ✓.txt").write_text(f'k = "{cs}"\n')
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False, engine="re"))
    assert len(result.findings) == 2
    doc = jsonout.scan_document(result)
    _same(doc)
    assert jsonout.render_scan(result) == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    # --format json writes the document while it makes it, the same text
    out = io.StringIO()
    jsonout.JsonFormat(out, FormatOptions()).finish(result)
    assert out.getvalue() == jsonout.render_scan(result)


def test_a_large_document_made_on_two_processes_is_the_same_text(tmp_path: Path) -> None:
    # 1,200 findings: over two chunks of 500, so two forked processes make them
    lines = [
        f"DefaultEndpointsProtocol=https;AccountName=acct{i:04d};AccountKey={new_key()}"
        for i in range(1200)
    ]
    (tmp_path / "app.env").write_text("\n".join(lines) + "\n")
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False))
    assert len(result.findings) == 1200
    one, two = io.StringIO(), io.StringIO()
    jsonout.JsonFormat(one, FormatOptions(jobs=1)).finish(result)
    jsonout.JsonFormat(two, FormatOptions(jobs=2)).finish(result)
    assert two.getvalue() == one.getvalue() == jsonout.render_scan(result)
    assert "…" in two.getvalue() and lines[7].split("AccountKey=")[1] not in two.getvalue()


def test_an_iterator_is_written_as_an_array_one_item_at_a_time() -> None:
    made: list[int] = []

    def items(n: int) -> Iterator[dict[str, int]]:
        for i in range(n):
            made.append(i)
            yield {"i": i}

    pieces = chunks({"a": items(3), "b": items(0), "c": 1})
    text = ""
    for piece in pieces:
        text += piece
        if '"c"' not in text:  # each item is made only when it is written
            assert len(made) <= text.count('"i"') + 1
    assert json.loads(text) == {"a": [{"i": 0}, {"i": 1}, {"i": 2}], "b": [], "c": 1}
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False)


class Level(enum.IntEnum):
    LOW = 1


class Name(enum.StrEnum):
    A = "a"


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        (),
        "",
        "tab\t, quote \", backslash \\, control \x01, line\u2028, emoji 🗝, accents é",
        {"nested": {"empty": {}, "list": [[], [{}], [1, [2, [3]]]], "t": (1, "x")}},
        [None, True, False, 0, -1, 10**30, 1.5, -0.0, 1e-7, 1e22, float("nan")],
        [float("inf"), -float("inf")],
        {3: "int key", 2.5: "float key", True: "bool key", False: "no", None: "none key"},
        {"intenum": Level.LOW, "strenum": Name.A},
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_kind_of_value(value: Any) -> None:
    _same(value)


def test_what_json_refuses_is_refused() -> None:
    with pytest.raises(TypeError):
        indented({"x": object()})
    with pytest.raises(TypeError):
        indented({(1, 2): "tuple key"})
