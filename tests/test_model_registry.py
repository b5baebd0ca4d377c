"""The registry of model formats (``modelfiles/formats/registry.py``) drives sniffing,
the split between pickle containers and structured formats, and the structural
checks; a format added to it at run time is judged end to end, and every blob is
sniffed once."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.detect.engine import make_engine
from keyscope.detect.rules import load_rules
from keyscope.modelfiles import analyzer, containers
from keyscope.modelfiles.analyzer import analyze_model, model_kind
from keyscope.modelfiles.formats import registry
from keyscope.modelfiles.formats.spec import ModelFormat
from keyscope.modelfiles.structured import StructuredIssue
from keyscope.pipeline import BlobScanner
from keyscope.sources.interface import Blob
from tests.sdk import NOW
from tests.test_model_files import os_system_p4, tar_of, torch_zip

TOY_MAGIC = b"\xf0TOY"  # no pickle opcode first: unknown once removed
TOY = TOY_MAGIC + b"\x00" + b"exec: rm -rf /" + bytes(64)


def _toy_sniff(data: bytes, head: bytes, partial: bool) -> bool:
    return head.startswith(TOY_MAGIC)


def _toy_check(data: bytes) -> list[StructuredIssue]:
    if data.find(b"exec:") < 0:  # find: big files come as a memory map
        return []
    return [StructuredIssue(("graph",), "critical", "executes-code", "a toy op that runs a shell")]


TOY_FORMAT = ModelFormat("toy", _toy_sniff, holds_pickles=False, check=_toy_check)


def test_the_derived_names_follow_the_registry() -> None:
    names = [f.name for f in registry.FORMATS]
    assert len(names) == len(set(names))
    assert analyzer.MODEL_FORMATS == set(names) == registry.format_names()
    without_pickles = {f.name for f in registry.FORMATS if not f.holds_pickles}
    assert without_pickles == containers.STRUCTURED_KINDS
    assert containers.sniff is registry.sniff is analyzer.sniff
    # a format without pickles is only ever judged by its check: it must have one
    assert all(f.check is not None for f in registry.FORMATS if not f.holds_pickles)


def test_the_registry_order_is_the_sniff_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    # a zip whose bytes 257..262 also read "ustar": zip is listed before tar
    data = bytearray(torch_zip(b"\x80\x04N.") + bytes(64))
    data[257:262] = b"ustar"
    assert registry.sniff(bytes(data)) == "zip"
    tar_first = sorted(registry.FORMATS, key=lambda f: f.name != "tar")
    monkeypatch.setattr(registry, "FORMATS", tar_first)
    assert registry.sniff(bytes(data)) == "tar"


def test_a_format_added_at_run_time_is_judged_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adding a format is its module plus one registry line: here the module is this
    test and the line an insertion at run time. The file is sniffed, judged by its
    check at the top level, inside a zip, a tar and a gzip, and by ``keyscope
    models`` (also through the memory map of a big file); removed, it is unknown."""
    inner = {"m.zip": _zip_of({"model/graph.toy": TOY}), "m.tar.gz": tar_of({"g.toy": TOY}, "w:gz")}
    with monkeypatch.context() as m:
        m.setattr(registry, "FORMATS", [*registry.FORMATS, TOY_FORMAT])
        assert registry.sniff(TOY) == model_kind(TOY) == "toy"
        assert not registry.holds_pickles("toy")
        (f,) = analyze_model("m.toy", TOY)
        assert (f.verdict, f.severity.label, f.where) == ("executes-code", "critical", ("graph",))
        assert analyze_model("clean.toy", TOY.replace(b"exec:", b"noop:")) == []
        (z,) = analyze_model("m.zip", inner["m.zip"])
        assert z.where == ("model/graph.toy", "graph")
        (t,) = analyze_model("m.tar.gz", inner["m.tar.gz"])
        assert t.where == ("<gzip>", "g.toy", "graph")
        (tmp_path / "m.toy").write_bytes(TOY)
        (tmp_path / "big.toy").write_bytes(TOY + bytes(4096))
        args = ["models", "-j", "1", "--format", "json", "--max-file-size", "1KB", str(tmp_path)]
        assert main(args) == 1
        found = json.loads(capsys.readouterr().out)["model_findings"]
        assert sorted(Path(f["path"]).name for f in found) == ["big.toy", "m.toy"]
        assert {f["verdict"] for f in found} == {"executes-code"}
    assert registry.sniff(TOY) is None and model_kind(TOY) is None
    assert analyze_model("m.toy", TOY) == []
    assert analyze_model("m.zip", inner["m.zip"]) == []


def _zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def _safetensors() -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    return len(header).to_bytes(8, "little") + header + bytes(4)


BLOBS = {
    "raw pickle": ("model.bin", os_system_p4()),
    "torch zip": ("ckpt.pt", torch_zip(os_system_p4())),
    "gzip": ("m.pkl.gz", gzip.compress(os_system_p4())),
    "tar": ("m.tar", tar_of({"data.pkl": os_system_p4()})),
    "header-less": ("m.pkl", b"cos\nsystem\n(S'echo x'\ntR."),
    "safetensors": ("m.safetensors", _safetensors()),
    "text": ("notes.txt", b"nothing to see here\n" * 50),
}


@pytest.mark.parametrize("name", list(BLOBS))
def test_each_blob_is_sniffed_once(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline sniffs a blob once (``model_kind``) and hands the kind on:
    ``analyze_model`` and the container walk do not sniff the same bytes again
    (their members are sniffed as they are read)."""
    path, data = BLOBS[name]
    calls: Counter[bytes] = Counter()
    first = registry.FORMATS[0]  # asked first, and (no ``first`` byte) for every blob

    def counting(blob: bytes, head: bytes, partial: bool) -> bool:
        calls[bytes(blob)] += 1
        return first.sniff(blob, head, partial)

    counted = [replace(first, sniff=counting, first=None), *registry.FORMATS[1:]]
    monkeypatch.setattr(registry, "FORMATS", counted)
    scanner = BlobScanner(make_engine("re", load_rules()), NOW, secrets=False)
    result = scanner.scan(Blob(path=path, data=data))
    assert calls[data] == 1
    assert bool(result.model_findings) == (name not in ("safetensors", "text"))


def _sniff_every_format(data: bytes, partial: bool = False) -> str | None:
    """The registry's definition of ``sniff``: the first format, in order, that matches."""
    head = bytes(data[:16])
    return next((f.name for f in registry.FORMATS if f.sniff(data, head, partial)), None)


MAGICS = [b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"\x93NUMPY", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
          b"\x5d\x00\x00", b"ZF", b"x\x9c", b"GGUF", b"\x89HDF\r\n\x1a\n", b"\x80\x04", b"(",
          b"c", b"]", b"s", b"m", b"#", b"\x08", b"", b"\x01\x00\x00\x00TFL3"]


@given(
    prefix=st.sampled_from(MAGICS),
    body=st.binary(max_size=300),
    tail=st.sampled_from([b"", b".", b".\n", b"ustar"]),
    partial=st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_the_first_byte_table_changes_no_answer(
    prefix: bytes, body: bytes, tail: bytes, partial: bool
) -> None:
    """``first`` only lets the registry skip sniffs that could not match."""
    for data in (prefix + body + tail, body[:257] + b"ustar" + body, prefix + body[:1]):
        assert registry.sniff(data, partial) == _sniff_every_format(data, partial)


def test_each_declared_first_byte_holds() -> None:
    """A format that declares its first bytes matches no file starting otherwise."""
    samples = {m + bytes(300) for m in MAGICS} | {bytes([b]) + bytes(300) for b in range(256)}
    for fmt in registry.FORMATS:
        if fmt.first is None:
            continue
        for data in samples:
            if fmt.sniff(data, data[:16], False):
                assert data[0] in fmt.first, fmt.name
