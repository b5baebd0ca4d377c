"""Property lists as expanders (``unpack/plists.py``, ``unpack/bplist.py``): binary and
XML plists written by ``plistlib`` (CPython's writer) become ``key/path = value`` lines,
so a finding names its key; hostile binary plists (cycles, shared subtrees, deep
nesting, huge declared counts, broken offset tables) end in a skipped entry or are
scanned as raw bytes, never a hang."""

from __future__ import annotations

import plistlib
import struct
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from keyscope.unpack import plists, registry
from keyscope.unpack.bplist import BinaryPlist, PlistError
from keyscope.unpack.interface import Budget, UnpackLimits
from keyscope.unpack.plists import PlistExpander
from tests.sdk import NOW, incident_url, new_key
from tests.test_fuzz_parsers import FUZZ, mutated, no_hang


@pytest.fixture(scope="module")
def url() -> str:
    return incident_url("plistacct", new_key())


def _conn(account: str = "plistconn") -> str:
    return (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={new_key()};"
            "EndpointSuffix=core.windows.net")  # fmt: skip


def _scan(path: Path, **options: object) -> ScanResult:
    return scan([path], ScanOptions(jobs=1, now=NOW, **options))  # type: ignore[arg-type]


def _write(tmp_path: Path, value: object, binary: bool = True, name: str = "Info.plist") -> Path:
    path = tmp_path / name
    fmt = plistlib.FMT_BINARY if binary else plistlib.FMT_XML
    path.write_bytes(plistlib.dumps(value, fmt=fmt, sort_keys=False))
    return path


def _where(result: ScanResult) -> list[tuple[tuple[str, ...], str]]:
    """(origin, the snippet's key path) of every location of every finding."""
    return [(loc.origin, loc.snippet.split(" = ", 1)[0])
            for f in result.findings for loc in f.locations]  # fmt: skip


def _text(data: bytes) -> str:
    """The ``<plist>`` member of ``data``, as the expander writes it."""
    blob = Blob("x.plist", data)
    expander = PlistExpander()
    assert expander.claims(blob)
    budget = Budget(UnpackLimits(), len(data))
    [text] = [m.data for m in expander.expand(blob, budget)
              if isinstance(m, Blob) and m.origin == ("<plist>",)]  # fmt: skip
    return text.decode("utf-8", "replace")


def test_the_plist_expander_is_registered() -> None:
    assert any(isinstance(e, PlistExpander) for e in registry.expanders())


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "xml"])
def test_a_finding_names_its_key_path(tmp_path: Path, url: str, binary: bool) -> None:
    value = {"CFBundleName": "Demo", "Services": {"Backends": [{"name": "x"},
                                                              {"STORAGE_URL": url}]}}
    result = _scan(_write(tmp_path, value, binary))
    assert _where(result) == [(("<plist>",), "Services/Backends/1/STORAGE_URL")]
    assert not result.skipped


def test_an_account_key_finds_its_account_on_the_next_key(tmp_path: Path) -> None:
    """The key and its account are separate values: the lines stay neighbours."""
    value = {"Storage": {"AccountKey": new_key(), "AccountName": "plistacct"}}
    [finding] = _scan(_write(tmp_path, value)).findings
    assert finding.explanation.access.account == "plistacct"
    assert finding.locations[0].snippet.startswith("Storage/AccountKey = ")


def test_xml_data_is_base64_decoded(tmp_path: Path) -> None:
    """plistlib wraps ``<data>`` in Base64 lines of 76 characters: the raw text scan
    misses it, the expander decodes it."""
    path = _write(tmp_path, {"Blob": _conn().encode()}, binary=False)
    assert b"<data>" in path.read_bytes()
    assert _where(_scan(path)) == [(("<plist>",), "Blob")]
    assert not _where(_scan(path, unpack_depth=0))  # what the expander adds


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_a_utf16_xml_plist_is_read(tmp_path: Path, codec: str) -> None:
    """plistlib writes UTF-8; the same document in UTF-16 with a byte-order mark (as
    some editors save it) is read by key as well, its ``<data>`` decoded."""
    xml = plistlib.dumps({"Blob": _conn().encode()}).decode()
    path = tmp_path / "Info.plist"
    path.write_bytes("\ufeff".encode(codec)
                     + xml.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode(codec))
    assert _where(_scan(path)) == [(("<plist>",), "Blob")]


def test_xml_comments_are_kept(tmp_path: Path, url: str) -> None:
    path = _write(tmp_path, {"a": 1}, binary=False)
    xml = path.read_bytes().replace(b"<dict>", f"<!-- old: {url} -->\n<dict>".encode())
    path.write_bytes(xml)
    assert _where(_scan(path)) == [(("<plist>",), "<comment>")]


def test_utf16_strings_of_a_binary_plist_are_decoded(tmp_path: Path, url: str) -> None:
    """A string with a non-ASCII character is stored as UTF-16BE."""
    path = _write(tmp_path, {"URL_DE": f"Schlüssel: {url}"})
    assert b"\x00s\x00i\x00g" in path.read_bytes()
    assert _where(_scan(path)) == [(("<plist>",), "URL_DE")]


def test_binary_data_is_a_member_and_a_nested_plist_is_unpacked(tmp_path: Path) -> None:
    """NSKeyedArchiver and friends keep plists inside ``<data>``: named by the key."""
    inner = plistlib.dumps({"Key": _conn()}, fmt=plistlib.FMT_BINARY)
    path = _write(tmp_path, {"Archive": {"Payload": inner}})
    assert _where(_scan(path)) == [(("Archive/Payload", "<plist>"), "Key")]


def test_scalars_are_written_as_text() -> None:
    from datetime import datetime

    value = {"n": 7, "big": -(2**63), "r": 0.5, "t": True, "f": False,
             "d": datetime(2024, 1, 2, 3, 4, 5), "u": plistlib.UID(9), "s": "x\ty",
             "bin": b"\x00\x01", "arr": [], "d2": {}}  # fmt: skip
    text = _text(plistlib.dumps(value, fmt=plistlib.FMT_BINARY, sort_keys=False))
    assert text.splitlines() == ["n = 7", f"big = {-(2**63)}", "r = 0.5", "t = true",
                                 "f = false", "d = 2024-01-02T03:04:05+00:00", "u = UID(9)",
                                 "s = x\ty", "bin = \x00\x01"]  # fmt: skip


def test_content_decides_not_the_name(tmp_path: Path, url: str) -> None:
    path = _write(tmp_path, {"k": url}, name="settings.dat")
    assert _where(_scan(path)) == [(("<plist>",), "k")]
    text = tmp_path / "notes.plist"
    text.write_text(f"k = {url}\n")
    assert _where(_scan(text)) == [((), "k")]


# -- hostile binary plists: made by plistlib, then damaged ---------------------------


def _trailer(data: bytes) -> tuple[int, int, int, int, int]:
    return struct.unpack(">6xBBQQQ", data[-32:])  # type: ignore[return-value]


def _with_trailer(data: bytes, **fields: int) -> bytes:
    names = ("offset_size", "ref_size", "objects", "top", "table")
    values = dict(zip(names, _trailer(data), strict=True)) | fields
    return data[:-32] + struct.pack(">6xBBQQQ", *(values[n] for n in names))


def _one_ref_array(url: str) -> tuple[bytes, int]:
    """``{"b": "end", "a": [url]}`` and the offset of the array's one reference.
    plistlib numbers the objects 0 (the dict), 1 "b", 2 "a", 3 "end", 4 the array,
    5 the URL; references are one byte. The URL is the last object: the raw scan of a
    damaged plist sees it end at the offset table."""
    data = plistlib.dumps({"b": "end", "a": [url]}, fmt=plistlib.FMT_BINARY, sort_keys=False)
    at = BinaryPlist(data).offset(4)
    assert data[at] == 0xA1  # an array of one
    return data, at + 1


@pytest.mark.parametrize("target", [0, 4], ids=["to-the-root", "to-itself"])
def test_a_reference_cycle_is_written_once(tmp_path: Path, url: str, target: int) -> None:
    data, ref = _one_ref_array(url)
    reader = BinaryPlist(data)
    assert reader.value(target).kind in ("dict", "array")  # type: ignore[union-attr]
    cyclic = data[:ref] + bytes([target]) + data[ref + 1 :]
    text = _text(cyclic)
    assert "a/0 = (same as " in text and "b = end" in text
    # the string the cycle replaced is no longer in the tree: listed after it
    path = tmp_path / "cycle.plist"
    path.write_bytes(cyclic)
    assert _where(_scan(path)) == [(("<plist>",), "<object 5>")]


def test_shared_subtrees_do_not_multiply(url: str) -> None:
    """A chain of 60 arrays each holding the next one twice would be 2**60 lines if
    every reference were followed."""
    level: object = [url]
    for _ in range(60):
        level = [level, level]  # plistlib writes a shared object once
    data = plistlib.dumps(level, fmt=plistlib.FMT_BINARY)
    started = time.monotonic()
    text = _text(data)
    assert time.monotonic() - started < 2
    assert text.count("(same as ") == 60 and text.count("sig=") == 1


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "xml"])
def test_deep_nesting_keeps_the_last_steps_of_the_path(
    tmp_path: Path, url: str, binary: bool
) -> None:
    """Nesting has no limit (the walk is iterative and each object is read once); the
    path of a line does: past MAX_PATH characters it keeps its last steps."""
    value: object = {"Key": url}
    for _ in range(400):
        value = {"Level": value}
    path = _write(tmp_path, {"top": "x", "nest": value}, binary)
    result = _scan(path)
    [(origin, where)] = _where(result)
    assert origin == ("<plist>",) and not result.skipped
    assert where.endswith("/Level/Key")  # the snippet is cut at its start
    if binary:
        [line] = [x for x in _text(path.read_bytes()).splitlines() if "/Key = " in x]
        key_path = line.split(" = ", 1)[0]
        assert key_path.startswith("…/Level/") and key_path.endswith("/Level/Key")
        assert len(key_path) <= plists.MAX_PATH


def test_a_huge_declared_count_is_refused_at_once(tmp_path: Path, url: str) -> None:
    """An array of 16 says its length in a one-byte int (``af 10 10``); made an 8-byte
    int, the length read is about 2**62."""
    data = plistlib.dumps({"b": url, "a": [str(i) for i in range(16)]},
                          fmt=plistlib.FMT_BINARY, sort_keys=False)  # fmt: skip
    at = BinaryPlist(data).offset(4)
    assert data[at : at + 3] == b"\xaf\x10\x10"
    huge = data[: at + 1] + b"\x13\x7f" + data[at + 3 :]
    with pytest.raises(PlistError, match="run past"):
        BinaryPlist(huge).value(4)
    path = tmp_path / "huge.plist"
    path.write_bytes(huge)
    started = time.monotonic()
    result = _scan(path)
    assert time.monotonic() - started < 5
    assert _where(result) == [(("<plist>",), "b")]
    [skipped] = result.skipped
    assert "binary plist not read to the end" in skipped.reason


def test_a_plist_claiming_too_many_objects_is_scanned_raw(tmp_path: Path, url: str) -> None:
    data, _ = _one_ref_array(url)
    path = tmp_path / "many.plist"
    path.write_bytes(_with_trailer(data, objects=2**40))
    assert not PlistExpander().claims(Blob(str(path), path.read_bytes()))
    assert _where(_scan(path))[0][0] == ()  # the raw bytes, as before


@pytest.mark.parametrize("damage", ["table-past-end", "cut-short", "offset-size-0", "top"])
def test_a_broken_trailer_or_offset_table_is_scanned_raw(
    tmp_path: Path, url: str, damage: str
) -> None:
    data, _ = _one_ref_array(url)
    broken = {
        "table-past-end": _with_trailer(data, table=len(data)),
        "cut-short": data[: len(data) - 35] + data[-32:],  # 3 of its 6 offsets
        "offset-size-0": _with_trailer(data, offset_size=0),
        "top": _with_trailer(data, top=99),
    }[damage]
    path = tmp_path / "broken.plist"
    path.write_bytes(broken)
    assert not PlistExpander().claims(Blob(str(path), broken))
    assert [o for o, _ in _where(_scan(path))] == [()]


def test_an_offset_outside_the_objects_keeps_the_other_values(tmp_path: Path, url: str) -> None:
    data = plistlib.dumps({"a": url, "b": "x"}, fmt=plistlib.FMT_BINARY, sort_keys=False)
    offset_size, _, objects, _, table = _trailer(data)
    last = table + (objects - 1) * offset_size  # "x", the last object
    broken = data[:last] + b"\xff" * offset_size + data[last + offset_size :]
    path = tmp_path / "offset.plist"
    path.write_bytes(broken)
    assert "a = https://" in _text(broken) and "b = (unreadable)" in _text(broken)
    result = _scan(path)
    assert _where(result) == [(("<plist>",), "a")]
    [skipped] = result.skipped
    assert "outside the object area" in skipped.reason


def test_the_text_and_value_limits(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plists, "MAX_VALUES", 3)
    path = _write(tmp_path, {"a": url, "b": 1, "c": 2, "d": 3, "e": 4})
    result = _scan(path)
    assert _where(result) == [(("<plist>",), "a")]
    assert "more than 3 values" in result.skipped[0].reason
    monkeypatch.setattr(plists, "MAX_VALUES", 1000)
    monkeypatch.setattr(plists, "MAX_TEXT", 2000)
    path = _write(tmp_path, {"a": url, "b": "y" * 5000})
    result = _scan(path)
    assert _where(result) == [(("<plist>",), "a")]
    assert "longer than 2000 bytes" in result.skipped[0].reason


def test_xml_entities_and_big_xml_are_not_parsed(tmp_path: Path, url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """plistlib refuses entity declarations (no billion laughs); an XML plist over
    MAX_XML_BYTES is scanned as text."""
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE plist [<!ENTITY a "aaaa">]>\n'
              f'<plist version="1.0"><dict><key>k</key><string>&a;{url}</string></dict></plist>')
    path = tmp_path / "laughs.plist"
    path.write_text(laughs)
    assert not PlistExpander().claims(Blob(str(path), path.read_bytes()))
    path = _write(tmp_path, {"k": url}, binary=False)
    monkeypatch.setattr(plists, "MAX_XML_BYTES", path.stat().st_size - 1)
    assert [o for o, _ in _where(_scan(path))] == [()]


def test_raw_bytes_join_a_value_to_the_next_object(tmp_path: Path, url: str) -> None:
    """Why binary plists are decoded: in the raw bytes the URL runs into the next
    object's marker and string (``…sig=…%3DSend``) and is rejected."""
    path = _write(tmp_path, {"url": url, "next": "end"})
    assert url.encode() + b"Send" in path.read_bytes()
    assert not _scan(path, unpack_depth=0).findings
    assert _where(_scan(path)) == [(("<plist>",), "url")]


_SEED_VALUE = {"a": [1, 2.5, "x" * 20, b"\x00\x01", {"k": "Clé", "t": True}],
               "u": plistlib.UID(3), "big": 2**63 - 1,
               "data": b"bplist00" + bytes(300)}  # fmt: skip
_SEEDS = [plistlib.dumps(_SEED_VALUE, fmt=plistlib.FMT_BINARY),
          plistlib.dumps({k: v for k, v in _SEED_VALUE.items() if k != "u"})]  # XML: no UID


@FUZZ
@given(data=st.data())
def test_a_damaged_plist_never_raises(data: st.DataObject) -> None:
    """plistlib's output (binary and XML) after byte-level edits: claimed or not,
    never an exception, never a hang."""
    raw = data.draw(mutated(data.draw(st.sampled_from(_SEEDS))))
    blob = Blob("f.plist", raw)
    expander = PlistExpander()
    with no_hang():
        if expander.claims(blob):
            list(expander.expand(blob, Budget(UnpackLimits(), len(raw))))
