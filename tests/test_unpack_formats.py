"""The other archive formats (``unpack/sevenzip.py``, ``unpack/ar.py``, zstd, old and
sparse tars in ``unpack/archives.py``), each on files made by the real tools: ``7z``,
``zstd``, ``tar``, ``dpkg-deb``, setuptools' ``sdist``, ``zip -A``. A secret inside is
found with its member path; the bytes outside an archive's members are scanned too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keyscope.model import ScanResult
from keyscope.sources.interface import Blob
from keyscope.unpack import registry
from keyscope.unpack.ar import ArExpander
from keyscope.unpack.archives import (
    OUTSIDE,
    CompressedExpander,
    PrefixedZipExpander,
    TarExpander,
)
from keyscope.unpack.interface import Budget, UnpackLimits
from keyscope.unpack.sevenzip import SevenZipExpander
from tests.unpacking import run_tool, scan_one, secret_line

TOOLS = ("7z", "zstd", "tar", "zip", "dpkg-deb")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)


def _secret(account: str = "fmtacct") -> str:
    return secret_line(account)


_run = run_tool
_scan = scan_one


def _origins(result: ScanResult) -> list[tuple[str, ...]]:
    return sorted(loc.origin for f in result.findings for loc in f.locations)


def _members(path: Path) -> list[tuple[str, ...]]:
    """The origins of what the claiming expander yields for ``path`` (one level)."""
    blob = Blob(str(path), path.read_bytes())
    expander = registry.expander_for(blob)
    assert expander is not None
    budget = Budget(UnpackLimits(), len(blob.data))
    return [m.origin for m in expander.expand(blob, budget) if isinstance(m, Blob)]


def test_the_registry_holds_the_new_expanders() -> None:
    kinds = [type(e) for e in registry.expanders()]
    assert SevenZipExpander in kinds and ArExpander in kinds


def test_7z_members_are_scanned_with_their_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "conf").mkdir(parents=True)
    (src / "conf" / "app.env").write_text("# app\n" + _secret())
    (src / "README").write_text("nothing\n")
    (src / "link.env").symlink_to("conf/app.env")
    _run(src, "7z", "a", "-bd", str(tmp_path / "bundle.7z"), "conf", "README", "link.env")
    result = _scan(tmp_path / "bundle.7z")
    assert _origins(result) == [("conf/app.env",)]
    assert result.findings[0].locations[0].line == 2
    [skipped] = result.skipped
    assert skipped.path.endswith("bundle.7z!/link.env")
    assert skipped.reason == "symbolic link member (to 'conf/app.env'): not followed"


def test_a_7z_inside_a_zip_and_a_zip_inside_a_7z(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "7z", "a", "-bd", "inner.7z", "a.env")
    _run(tmp_path, "zip", "-q", "outer.zip", "inner.7z")
    assert _origins(_scan(tmp_path / "outer.zip")) == [("inner.7z", "a.env")]
    _run(tmp_path, "zip", "-q", "inner.zip", "a.env")
    _run(tmp_path, "7z", "a", "-bd", "outer.7z", "inner.zip")
    assert _origins(_scan(tmp_path / "outer.7z")) == [("inner.zip", "a.env")]


@pytest.mark.parametrize("hidden", [False, True])
def test_an_encrypted_7z_is_a_skipped_entry(tmp_path: Path, hidden: bool) -> None:
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "7z", "a", "-bd", "-pSecret1", f"-mhe={'on' if hidden else 'off'}",
         "locked.7z", "a.env")  # fmt: skip
    result = _scan(tmp_path / "locked.7z")
    assert not result.findings
    [skipped] = result.skipped
    if hidden:
        assert skipped.path.endswith("locked.7z")
        assert "encrypted, names hidden" in skipped.reason
    else:
        assert skipped.path.endswith("locked.7z!/a.env")
        assert skipped.reason == "encrypted 7z member: not scanned"


def test_a_truncated_7z_is_a_skipped_entry_and_its_bytes_are_scanned(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "7z", "a", "-bd", "-mx0", "stored.7z", "a.env")  # stored: the text is plain
    data = (tmp_path / "stored.7z").read_bytes()
    (tmp_path / "cut.7z").write_bytes(data[: len(data) - 40])
    result = _scan(tmp_path / "cut.7z")
    [skipped] = result.skipped
    assert "7z archive is truncated" in skipped.reason
    assert [loc.origin for f in result.findings for loc in f.locations] == [()]  # raw bytes


@pytest.mark.parametrize("streamed", [False, True])
def test_a_single_zstd_file(tmp_path: Path, streamed: bool) -> None:
    """``zstd file`` writes the content size in the frame; ``zstd -c < file`` cannot (a
    frame without a content size, read as a stream with the cap)."""
    (tmp_path / "settings.env").write_text(_secret())
    out = tmp_path / "settings.env.zst"
    if streamed:
        with open(tmp_path / "settings.env", "rb") as src, open(out, "wb") as dst:
            subprocess.run(["zstd", "-q", "-c"], stdin=src, stdout=dst, check=True)
    else:
        _run(tmp_path, "zstd", "-q", "settings.env")
    from backports import zstd

    declared = zstd.get_frame_info(out.read_bytes()).decompressed_size
    assert (declared is None) == streamed
    assert _origins(_scan(out)) == [("settings.env",)]


def test_a_zstd_tar(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "app.env").write_text(_secret())
    _run(src, "tar", "--zstd", "-cf", str(tmp_path / "bundle.tar.zst"), "etc")
    assert _origins(_scan(tmp_path / "bundle.tar.zst")) == [("etc/app.env",)]


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd"])
def test_a_debian_package(tmp_path: Path, compression: str) -> None:
    """A real ``.deb`` (``dpkg-deb --build``): the config in ``data.tar.*`` and the
    maintainer script in ``control.tar.*`` are found, each with its chain."""
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "etc" / "demo").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: demo\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: Demo <demo@example.com>\nDescription: demo\n"
    )
    postinst = root / "DEBIAN" / "postinst"
    postinst.write_text("#!/bin/sh\nexport " + _secret("debscript"))
    postinst.chmod(0o755)
    (root / "etc" / "demo" / "app.conf").write_text("[storage]\n" + _secret("debconf"))
    _run(tmp_path, "dpkg-deb", f"-Z{compression}", "--root-owner-group", "--build", "pkg",
         "demo.deb")  # fmt: skip
    ext = {"xz": ".xz", "gzip": ".gz", "zstd": ".zst"}[compression]
    assert _members(tmp_path / "demo.deb") == [
        ("debian-binary",), (f"control.tar{ext}",), (f"data.tar{ext}",)
    ]
    result = _scan(tmp_path / "demo.deb")
    assert _origins(result) == [
        (f"control.tar{ext}", "./postinst"),
        (f"data.tar{ext}", "./etc/demo/app.conf"),
    ]
    assert not result.skipped


def test_a_static_library_with_long_member_names(tmp_path: Path) -> None:
    """GNU ar keeps names over 15 characters in its ``//`` table."""
    (tmp_path / "a_rather_long_member_name.env").write_text(_secret())
    (tmp_path / "short.txt").write_text("x\n")
    _run(tmp_path, "ar", "rc", "lib.a", "short.txt", "a_rather_long_member_name.env")
    assert _members(tmp_path / "lib.a") == [("short.txt",), ("a_rather_long_member_name.env",)]
    assert _origins(_scan(tmp_path / "lib.a")) == [("a_rather_long_member_name.env",)]


def test_python_sdists_tar_gz_and_zip(tmp_path: Path) -> None:
    """Real sdists made by setuptools (offline, no build isolation): the config file the
    author shipped by mistake is found in both the ``.tar.gz`` and the ``.zip``."""
    proj = tmp_path / "proj"
    (proj / "demo").mkdir(parents=True)
    (proj / "config").mkdir()
    (proj / "demo" / "__init__.py").write_text("")
    (proj / "config" / "settings.ini").write_text("[azure]\n" + _secret("sdistacct"))
    (proj / "MANIFEST.in").write_text("include config/settings.ini\n")
    (proj / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='demo', version='0.1', packages=['demo'])\n"
    )
    _run(proj, sys.executable, "setup.py", "-q", "sdist", "--formats=gztar,zip")
    chain = ("demo-0.1/config/settings.ini",)
    for name in ("demo-0.1.tar.gz", "demo-0.1.zip"):
        result = _scan(proj / "dist" / name)
        assert _origins(result) == [chain], name
        assert result.findings[0].locations[0].line == 2


def test_an_old_v7_tar(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.env").write_text(_secret())
    _run(src, "tar", "--format=v7", "-cf", str(tmp_path / "old.tar"), "app.env")
    data = (tmp_path / "old.tar").read_bytes()
    assert not any(data[257:265])  # no ustar magic
    assert TarExpander().claims(Blob("old.tar", data))
    assert _origins(_scan(tmp_path / "old.tar")) == [("app.env",)]
    _run(tmp_path, "gzip", "-k", "old.tar")
    assert _origins(_scan(tmp_path / "old.tar.gz")) == [("app.env",)]


def test_text_that_is_not_a_tar_is_not_claimed() -> None:
    for text in (b"x" * 600, bytes(600), b"hello\n" * 100, os.urandom(600)):
        assert not TarExpander().claims(Blob("f", text))


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_a_sparse_member_is_read_as_its_data_only(tmp_path: Path, fmt: str) -> None:
    """GNU tar stores a 1 GiB sparse file in a few KiB (§2.3): the member is its data
    extents (the secret), never the gigabyte of holes."""
    src = tmp_path / "src"
    src.mkdir()
    big = src / "disk.img"
    with open(big, "wb") as f:
        f.truncate(1024**3)
        f.seek(512 * 1024**2)
        f.write(_secret().encode())
    _run(src, "tar", f"--format={fmt}", "--sparse", "-cf", str(tmp_path / "sparse.tar"),
         "disk.img")  # fmt: skip
    assert (tmp_path / "sparse.tar").stat().st_size < 64 * 1024
    blob = Blob("sparse.tar", (tmp_path / "sparse.tar").read_bytes())
    budget = Budget(UnpackLimits(), len(blob.data))
    [member] = [m for m in TarExpander().expand(blob, budget) if isinstance(m, Blob)]
    assert member.origin == ("disk.img",) and len(member.data) < 64 * 1024
    assert budget.unpacked < 64 * 1024
    assert _origins(_scan(tmp_path / "sparse.tar")) == [("disk.img",)]


def test_a_self_extracting_zip_stub_is_scanned(tmp_path: Path) -> None:
    """A shell stub before the zip (``zip -A`` adjusts the offsets, as self-extractors
    and Spring Boot launch scripts are made): the stub's secret is found outside the
    members, the member's inside."""
    (tmp_path / "inner.env").write_text(_secret("member"))
    _run(tmp_path, "zip", "-q", "payload.zip", "inner.env")
    stub = "#!/bin/sh\n" + "export " + _secret("stub") + 'exec unzip -o "$0"\n'
    sfx = tmp_path / "installer.sh"
    sfx.write_bytes(stub.encode() + (tmp_path / "payload.zip").read_bytes())
    _run(tmp_path, "zip", "-q", "-A", "installer.sh")
    assert not sfx.read_bytes().startswith(b"PK")
    assert _origins(_scan(sfx)) == [(OUTSIDE,), ("inner.env",)]
    # a zip64 end record (zip -fz) is covered too: nothing else is outside
    _run(tmp_path, "zip", "-q", "-fz", "big.zip", "inner.env")
    assert _members(tmp_path / "big.zip") == [("inner.env",)]


def test_a_tar_that_ends_with_a_zip_is_read_as_a_tar(tmp_path: Path) -> None:
    """The last member of a tar is a small zip, so the tar ends with a zip's end
    record: it is still a tar (the prefixed-zip reading comes last), its members and
    the zip's read in turn."""
    (tmp_path / "a.env").write_text(_secret("tarmember"))
    (tmp_path / "b.env").write_text(_secret("zipmember"))
    _run(tmp_path, "zip", "-q", "last.zip", "b.env")
    _run(tmp_path, "tar", "-cf", "bundle.tar", "a.env", "last.zip")
    data = (tmp_path / "bundle.tar").read_bytes()
    assert PrefixedZipExpander().claims(Blob("bundle.tar", data))
    assert type(registry.expander_for(Blob("bundle.tar", data))) is TarExpander
    assert _origins(_scan(tmp_path / "bundle.tar")) == [("a.env",), ("last.zip", "b.env")]
    assert type(registry.expanders()[-1]) is PrefixedZipExpander


def test_data_appended_to_a_zip_or_a_tar_is_scanned(tmp_path: Path) -> None:
    (tmp_path / "inner.env").write_text("plain\n")
    _run(tmp_path, "zip", "-q", "a.zip", "inner.env")
    _run(tmp_path, "tar", "-cf", "a.tar", "inner.env")
    for name in ("a.zip", "a.tar"):
        path = tmp_path / name
        path.write_bytes(path.read_bytes() + b"\n# appended\n" + _secret("tail").encode())
        result = _scan(path)
        assert _origins(result) == [(OUTSIDE,)], name
        assert result.findings[0].locations[0].line == 3


def test_a_prefix_before_a_zip_that_starts_like_one(tmp_path: Path) -> None:
    """A zip with a second zip prepended (the first one's members are listed by no
    central directory): the prefix's bytes are the outside member, and a zip that
    starts there is unpacked in turn."""
    (tmp_path / "first.env").write_text(_secret("first"))
    (tmp_path / "second.env").write_text(_secret("second"))
    _run(tmp_path, "zip", "-q", "first.zip", "first.env")
    _run(tmp_path, "zip", "-q", "second.zip", "second.env")
    both = tmp_path / "both.zip"
    both.write_bytes((tmp_path / "first.zip").read_bytes() + (tmp_path / "second.zip").read_bytes())
    assert _origins(_scan(both)) == [(OUTSIDE, "first.env"), ("second.env",)]


def test_ordinary_archives_have_nothing_outside_their_members(tmp_path: Path) -> None:
    """No noise: what ``zip`` (also streaming, with data descriptors), ``tar`` and
    ``ar`` write is covered by members, headers and padding."""
    (tmp_path / "a.txt").write_text("a\n" * 100)
    _run(tmp_path, "zip", "-q", "plain.zip", "a.txt")
    with open(tmp_path / "a.txt", "rb") as src, open(tmp_path / "streamed.zip", "wb") as dst:
        subprocess.run(["zip", "-q", "-", "-"], stdin=src, stdout=dst, check=True)
    _run(tmp_path, "tar", "-cf", "plain.tar", "a.txt")
    _run(tmp_path, "ar", "rc", "plain.a", "a.txt")
    _run(tmp_path, "7z", "a", "-bd", "plain.7z", "a.txt")
    for name in ("plain.zip", "streamed.zip", "plain.tar", "plain.a", "plain.7z"):
        origins = _members(tmp_path / name)
        assert origins and all(OUTSIDE not in o for o in origins), (name, origins)
    assert CompressedExpander().claims(Blob("z", (tmp_path / "plain.zip").read_bytes())) is False
