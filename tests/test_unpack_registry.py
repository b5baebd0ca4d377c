"""The expander registry asks only the expanders whose declared first bytes admit a
blob's first byte: that shortcut must answer as asking every expander in order would,
for every kind of container and for what is none."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import plistlib
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest
from backports import zstd
from hypothesis import given
from hypothesis import strategies as st

from keyscope.sources.interface import Blob
from keyscope.unpack import registry
from keyscope.unpack.android.arsc import MAGIC as ARSC
from keyscope.unpack.android.axml import MAGIC as AXML
from keyscope.unpack.interface import Expander

TEXT = b"AccountKey=not-a-key\n"


def _naive(blob: Blob) -> Expander | None:
    return next((e for e in registry.expanders() if e.claims(blob)), None)


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", TEXT)
    return out.getvalue()


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = len(TEXT)
        t.addfile(info, io.BytesIO(TEXT))
    return out.getvalue()


def _7z(tmp: Path) -> bytes:
    with py7zr.SevenZipFile(tmp / "a.7z", "w") as z:
        z.writestr(TEXT, "a.txt")
    return (tmp / "a.7z").read_bytes()


def _samples(tmp: Path) -> dict[str, bytes]:
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                "cells": [{"cell_type": "code", "source": "x = 1", "metadata": {},
                           "outputs": [], "execution_count": None}]}  # fmt: skip
    return {
        "zip": _zip(),
        "prefixed zip": b"#!/bin/sh\nexit 0\n" + _zip(),
        "tar": _tar(),
        "gzip": gzip.compress(TEXT),
        "bzip2": bz2.compress(TEXT),
        "xz": lzma.compress(TEXT),
        "zstd": zstd.compress(TEXT),
        "7z": _7z(tmp),
        "ar": b"!<arch>\na.txt/          0           0     0     644     21        `\n" + TEXT,
        "notebook": b"\n  " + json.dumps(notebook).encode(),
        "binary plist": plistlib.dumps({"Key": "value"}, fmt=plistlib.FMT_BINARY),
        "xml plist": plistlib.dumps({"Key": "value"}),
        "utf-16 xml plist": plistlib.dumps({"Key": "value"}).decode().encode("utf-16"),
        "axml": AXML + bytes(12),
        "arsc": ARSC + bytes(8),
        "dex": b"dex\n035\0" + bytes(120),
        "text": TEXT,
        "empty": b"",
    }


def test_the_shortcut_answers_as_asking_every_expander(tmp_path: Path) -> None:
    claimed = set()
    for name, data in _samples(tmp_path).items():
        blob = Blob(name, data)
        expected = _naive(blob)
        assert registry.expander_for(blob) is expected, name
        if expected is not None:
            claimed.add(type(expected).__name__)
    # the samples reach every kind the registry holds but images, Mach-O and DEX
    # (their own tests build real ones)
    assert claimed >= {"ZipExpander", "PrefixedZipExpander", "TarExpander",
                       "CompressedExpander", "SevenZipExpander", "ArExpander",
                       "NotebookExpander", "PlistExpander", "AxmlExpander",
                       "ArscExpander"}  # fmt: skip


@given(st.sampled_from([b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"!<arch>\n",
                        b"{", b"bplist00", b"<?xml", b"\xca\xfe\xba\xbe", b"dex\n035\0",
                        AXML, ARSC, b"", b"\xef\xbb\xbf"]),
       st.binary(max_size=600))  # fmt: skip
def test_the_shortcut_answers_as_asking_every_expander_on_junk(magic: bytes, rest: bytes) -> None:
    blob = Blob("junk", magic + rest)
    assert registry.expander_for(blob) is _naive(blob)


def test_a_replaced_list_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = Blob("a.zip", _zip())
    assert registry.expander_for(blob) is not None
    monkeypatch.setattr(registry, "EXPANDERS", [])
    assert registry.expander_for(blob) is None


def test_a_lazy_entry_admits_what_its_expander_admits() -> None:
    """A ``Lazy`` entry repeats its class's ``first`` and ``binary`` so that the
    shortcut can skip it without importing it: they must agree."""
    lazy = [e for e in registry.EXPANDERS if isinstance(e, registry.Lazy)]
    assert len(lazy) >= 8
    for entry in lazy:
        loaded = entry.load()
        assert entry.binary == loaded.binary, entry.target
        assert (entry.first is None) == (loaded.first is None), entry.target
        assert set(entry.first or b"") == set(loaded.first or b""), entry.target
