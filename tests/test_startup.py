"""Start-up: a scan loads what its input needs, not the whole library. Model readers,
ignore-file matching and the process pool cost more to import than a small scan
takes; each test shows one of them staying out until its input calls for it."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from xml.sax import saxutils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyscope import scan
from keyscope.modelfiles import kinds, pickle_vm
from keyscope.unpack.android import axml

MARK = "--- modules ---"

# Loaded only for a model file, a tree with ignore files, or a scan of two units or more.
MODEL_READERS = {
    "keyscope.modelfiles.analyzer",
    "keyscope.modelfiles.tf_graphs",
    "keyscope.modelfiles.onnx_graphs",
    "keyscope.modelfiles.tflite_graphs",
    "keyscope.modelfiles.structured",
}
POOL = {"concurrent.futures.process"}
IGNORE = {"pathspec"}
# Loaded only when an Android binary XML file or an XML property list is met (xml.sax
# brings urllib and http.client with it).
XML = {"xml.sax", "xml.sax.saxutils", "plistlib", "xml.parsers.expat"}
# Loaded only for --verify, keyscope crawl or alerts: the network code.
NETWORK = {"keyscope.verify.transport", "http.client", "ssl"}
# Loaded only when a report needs them (the HTML page; importlib.resources at all).
PAGE = {"html.entities", "importlib.resources"}
# Loaded only for --cluster (keyscope[cluster]).
DASK = {"dask", "distributed", "keyscope.fleet.cluster"}
# Loaded only when a candidate of theirs is met.
PROVIDERS = {"keyscope.providers.aws", "keyscope.providers.gcp", "keyscope.providers.platforms",
             "keyscope.providers.privatekeys", "keyscope.providers.jwt"}


def _loaded(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after ``keyscope ARGV``."""
    code = (
        "import sys\n"
        "from keyscope.cli import main\n"
        f"main({list(argv)!r})\n"
        f"print({MARK!r})\n"
        "print('\\n'.join(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(out.split(MARK, 1)[1].split())


@pytest.fixture
def text_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "src").mkdir(parents=True)
    # Both start with "#": no model format and no pickle opcode (a file that starts
    # like a pickle, as "print(" does with the PUT opcode, is read as one).
    (root / "src" / "app.py").write_text("#!/usr/bin/env python3\nprint('hello')\n")
    (root / "README.md").write_text("# Title\n\nSome text.\n")
    return root


def test_a_small_text_scan_loads_no_model_reader_no_pool_no_ignore_matcher(
    text_tree: Path,
) -> None:
    loaded = _loaded("scan", "-q", "-j", "2", "--no-git", str(text_tree))
    assert "keyscope.scan" in loaded  # the probe sees the scan's modules
    assert not loaded & (MODEL_READERS | POOL | IGNORE | XML | NETWORK | PROVIDERS | PAGE | DASK)


def test_text_that_starts_with_an_opcode_letter_loads_no_model_reader(tmp_path: Path) -> None:
    # "import" is INST, "class" GLOBAL, "MIME" BININT2, "From" FLOAT: pickle.load fails
    # at the first opcode of each, so none is handed to the emulator
    root = tmp_path / "tree"
    root.mkdir()
    for name, text in {
        "a.py": "import os\n", "b.py": "class A:\n    pass\n", "c.py": "def f():\n    pass\n",
        "d.py": "print('x')\n", "m.eml": "MIME-Version: 1.0\nFrom: a@b.c\n",
        "f.eml": "From: a@b.c\n", "r.py": 'r"""Doc."""\n',
    }.items():  # fmt: skip
        (root / name).write_text(text)
    loaded = _loaded("scan", "-q", "-j", "1", "--no-git", str(root))
    assert "keyscope.scan" in loaded
    assert not loaded & (MODEL_READERS | {"keyscope.modelfiles.pickle_vm"})


def test_each_is_loaded_once_its_input_needs_it(text_tree: Path) -> None:
    (text_tree / ".gitignore").write_text("*.log\n")
    (text_tree / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0]}, protocol=4))
    assert {"keyscope.modelfiles.analyzer", *IGNORE} <= _loaded(
        "scan", "-q", "-j", "1", "--no-git", str(text_tree)
    )
    # workers start once READY_UNITS units wait: units of 32, 64, 128 … 512 entries
    many = sum(min(32 << n, 512) for n in range(scan.READY_UNITS)) + 100
    for i in range(many):
        (text_tree / "src" / f"m{i}.txt").write_text("# x\n")
    assert _loaded("scan", "-q", "-j", "2", "--no-git", str(text_tree)) >= POOL


@given(st.text(alphabet="ab&<>\"'\n\r\t é\x00", max_size=24))
def test_the_xml_escaping_of_binary_xml_is_saxutils(text: str) -> None:
    assert axml.escape(text) == saxutils.escape(text)
    assert axml.quoteattr(text) == saxutils.quoteattr(text)


def test_the_light_opcode_table_is_the_emulators() -> None:
    # model_kind (every blob) tests the first byte against its own copy of the table
    assert kinds.OPCODES == pickle_vm.OPCODES
