"""Archives as expanders (``unpack/archives.py``), on archives made by the real tools
(``zip``, ``tar``, ``gzip``, ``bzip2``, ``xz``): members are scanned with their path
in ``origin``, nested archives with the full chain, and every budget and hostile
shape is a skipped entry that keeps what was read before it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from keyscope.model import ScanResult
from keyscope.unpack import archives, registry
from keyscope.unpack.archives import CompressedExpander, TarExpander, ZipExpander
from tests.unpacking import run_tool, scan_one, secret_line

SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"
SCAN_SCHEMA = Path(__file__).resolve().parents[1] / "src" / "keyscope" / "schemas" / "scan-v1.json"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("zip", "tar", "gzip", "bzip2", "xz")),
    reason="needs the zip, tar, gzip, bzip2 and xz tools",
)


def _secret(account: str = "archacct") -> str:
    return secret_line(account)


_run = run_tool
_scan = scan_one


def _origins(result: ScanResult) -> list[tuple[str, ...]]:
    return [loc.origin for f in result.findings for loc in f.locations]


def test_the_registry_holds_the_archive_expanders_in_order() -> None:
    kinds = [type(e) for e in registry.expanders()]
    for kind in (ZipExpander, TarExpander, CompressedExpander):
        assert kind in kinds
    assert kinds.index(ZipExpander) < kinds.index(TarExpander) < kinds.index(CompressedExpander)


@pytest.mark.parametrize("name", ["app.jar", "pkg-1.0-py3-none-any.whl", "app.apk", "data.bin"])
def test_a_secret_in_a_zip_member_is_found_with_its_path(tmp_path: Path, name: str) -> None:
    src = tmp_path / "src"
    (src / "assets").mkdir(parents=True)
    (src / "assets" / "config.env").write_text("# config\n" + _secret())
    (src / "README").write_text("nothing here\n")
    _run(src, "zip", "-q", "-r", str(tmp_path / name), "assets", "README")
    result = _scan(tmp_path / name)
    assert _origins(result) == [("assets/config.env",)]
    assert result.findings[0].locations[0].line == 2
    assert not result.skipped


@pytest.mark.parametrize(("flag", "suffix"), [("-z", ".tar.gz"), ("-j", ".tar.bz2"),
                                              ("-J", ".tar.xz"), ("", ".tar")])
def test_tar_plain_and_compressed(tmp_path: Path, flag: str, suffix: str) -> None:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "app.env").write_text(_secret())
    out = tmp_path / ("bundle" + suffix)
    _run(src, "tar", *([flag] if flag else []), "-cf", str(out), "etc")
    assert _origins(_scan(out)) == [("etc/app.env",)]


@pytest.mark.parametrize(("tool", "suffix"), [("gzip", ".gz"), ("bzip2", ".bz2"), ("xz", ".xz")])
def test_a_single_compressed_file_is_named_after_the_outer_file(
    tmp_path: Path, tool: str, suffix: str
) -> None:
    (tmp_path / "settings.env").write_text(_secret())
    _run(tmp_path, tool, "settings.env")
    assert _origins(_scan(tmp_path / ("settings.env" + suffix))) == [("settings.env",)]
    (tmp_path / ("settings.env" + suffix)).rename(tmp_path / "blob")
    assert _origins(_scan(tmp_path / "blob")) == [("<data>",)]


def test_zip_in_tar_gz_in_zip_has_the_full_chain(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "secret.env").write_text(_secret())
    _run(d, "zip", "-q", "inner.zip", "secret.env")
    (d / "lib").mkdir()
    (d / "inner.zip").rename(d / "lib" / "inner.zip")
    _run(d, "tar", "-czf", "middle.tar.gz", "lib")
    _run(d, "zip", "-q", str(tmp_path / "outer.zip"), "middle.tar.gz")
    assert _origins(_scan(tmp_path / "outer.zip")) == [
        ("middle.tar.gz", "lib/inner.zip", "secret.env")
    ]


def _nested_zips(tmp_path: Path, levels: int) -> Path:
    d = tmp_path / "n"
    d.mkdir()
    (d / "level0.env").write_text(_secret())
    inner = "level0.env"
    for i in range(1, levels + 1):
        _run(d, "zip", "-q", f"level{i}.zip", inner)
        inner = f"level{i}.zip"
    return d / inner


def test_nesting_stops_at_the_depth(tmp_path: Path) -> None:
    """42.zip-style nesting: past ``unpack_depth`` containers the innermost one is a
    skipped entry (and scanned as raw bytes); 0 unpacks nothing."""
    path = _nested_zips(tmp_path, 10)
    result = _scan(path)
    assert not result.findings
    [skipped] = result.skipped
    assert "nested deeper than 8 containers" in skipped.reason
    chain = "!/".join(f"level{i}.zip" for i in range(9, 1, -1))
    assert skipped.path.endswith(f"level10.zip!/{chain}")
    deep = _scan(path, unpack_depth=10)
    assert _origins(deep) == [(*(f"level{i}.zip" for i in range(9, 0, -1)), "level0.env")]
    assert not deep.skipped
    assert not _scan(path, unpack_depth=0).skipped


def test_a_gzip_bomb_is_skipped_and_the_scan_goes_on(tmp_path: Path) -> None:
    """1 GiB of zeros, gzipped by the real tool (streamed, never held): a skipped
    entry naming the limit; the other files are scanned; the expander holds at most
    one member's limit in memory. (Models off: the outer blob's model check has its
    own, larger, decompression budget in ``modelfiles/``.)"""
    bomb = tmp_path / "zeros.bin.gz"
    with open(bomb, "wb") as out:
        gz = subprocess.Popen(["gzip", "-9", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert gz.stdin is not None
        zeros = bytes(8 * 1024 * 1024)
        for _ in range(128):
            gz.stdin.write(zeros)
        gz.stdin.close()
        assert gz.wait() == 0
    assert bomb.stat().st_size < 2 * 1024 * 1024
    (tmp_path / "app.env").write_text(_secret())
    probe = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from keyscope.scan import ScanOptions, scan\n"
        "r = scan([Path(sys.argv[1])], ScanOptions(jobs=1, models=False))\n"
        "print(len(r.findings), r.skipped)\n"
        "status = Path('/proc/self/status').read_text()\n"
        "print(re.search(r'VmHWM:\\s*(\\d+)', status).group(1), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 ")  # the scan went on: app.env's secret
    assert "zeros.bin.gz!/zeros.bin" in done.stdout
    assert f"gzip data unpacks to more than {archives.MEMBER_BYTES} bytes" in done.stdout
    peak_mib = int(done.stderr.strip().splitlines()[-1]) // 1024
    assert peak_mib < 40 + 2 * archives.MEMBER_BYTES // 2**20, f"peak RSS {peak_mib} MiB"


def test_the_member_count_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    from keyscope import scan as scan_module
    from keyscope.unpack.interface import UnpackLimits

    monkeypatch.setattr(scan_module, "UnpackLimits", functools.partial(UnpackLimits, members=3))
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"m{i}.txt").write_text("x\n")
    (src / "m1.txt").write_text(_secret())
    _run(src, "zip", "-q", str(tmp_path / "many.zip"), *(f"m{i}.txt" for i in range(6)))
    result = _scan(tmp_path / "many.zip")
    assert _origins(result) == [("m1.txt",)]  # read before the limit
    [reason] = [s.reason for s in result.skipped]
    assert reason.startswith("more than 3 members (stopped after 3 members, ")
    assert result.skipped[0].path.endswith("many.zip!/m3.txt")


def test_overlapping_zip_members_are_refused(tmp_path: Path) -> None:
    """A zip bomb of overlapping entries: central directory records that point into
    the data of other members (built by hand: no tool makes one)."""
    path = tmp_path / "overlap.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.env", _secret())
        z.writestr("b.txt", "plain\n")
    data = bytearray(path.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # b.txt's central record: point it at a.env's data
    data[cd + 42 : cd + 46] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    result = _scan(path)
    assert _origins(result) == [("a.env",)]
    [skipped] = result.skipped
    assert skipped.path.endswith("overlap.zip!/b.txt") and "overlaps" in skipped.reason


def test_encrypted_zip_members_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "zip", "-q", "-P", "pw", "locked.zip", "a.env")
    result = _scan(tmp_path / "locked.zip")
    assert not result.findings
    assert [s.reason for s in result.skipped] == ["encrypted zip member: not scanned"]


def test_tar_names_are_shown_never_used(tmp_path: Path) -> None:
    """``../x`` and ``/etc/x`` members are scanned under the names they give; nothing
    is written anywhere (the scan only reads)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.env").write_text(_secret())
    out = tmp_path / "evil.tar"
    _run(src, "tar", "-cf", str(out), "--transform", "s,^x.env$,../x.env,", "-P", "x.env")
    _run(src, "tar", "-rf", str(out), "--transform", "s,^x.env$,/etc/x.env,", "-P", "x.env")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    assert sorted(_origins(_scan(out))) == [("../x.env",), ("/etc/x.env",)]
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert not (Path("/etc") / "x.env").exists()


def test_link_members_are_skipped_with_a_reason(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.env").write_text(_secret())
    (src / "sym.env").symlink_to("/etc/passwd")
    os.link(src / "real.env", src / "hard.env")
    _run(src, "tar", "-cf", str(tmp_path / "links.tar"), "real.env", "sym.env", "hard.env")
    result = _scan(tmp_path / "links.tar")
    assert _origins(result) == [("real.env",)]
    reasons = sorted(s.reason for s in result.skipped)
    assert reasons[0].startswith("hard link member") and reasons[1].startswith("symbolic link")
    _run(src, "zip", "-q", "-y", str(tmp_path / "links.zip"), "real.env", "sym.env")
    result = _scan(tmp_path / "links.zip")
    assert _origins(result) == [("real.env",)]
    assert [s.reason for s in result.skipped] == ["symbolic link member: not followed"]


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_a_truncated_archive_keeps_the_members_before_the_damage(
    tmp_path: Path, kind: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.env").write_text(_secret())
    (src / "b.bin").write_bytes(os.urandom(256 * 1024))
    out = tmp_path / f"cut.{kind}"
    if kind == "zip":  # b.bin's local header damaged: a.env read, b.bin refused
        _run(src, "zip", "-q", str(out), "a.env", "b.bin")
        data = out.read_bytes()
        second = data.find(b"PK\x03\x04", 4)
        cut = data[:second] + b"XX" + data[second + 2 :]
    else:  # cut in the middle of b.bin
        _run(src, "tar", "-czf", str(out), "a.env", "b.bin")
        data = out.read_bytes()
        cut = data[: len(data) // 2]
    out.write_bytes(cut)
    result = _scan(out)
    assert _origins(result) == [("a.env",)]
    assert len(result.skipped) == 1 and "cut." in result.skipped[0].path


def test_a_zip_cut_short_is_one_skipped_entry(tmp_path: Path) -> None:
    """Without its central directory a zip is not read (no local-header guessing)."""
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "zip", "-q", "cut.zip", "a.env")
    data = (tmp_path / "cut.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) - 30])
    result = _scan(tmp_path / "cut.zip")
    [skipped] = result.skipped
    assert skipped.path.endswith("cut.zip") and "zip archive cannot be read" in skipped.reason


def test_the_unpack_depth_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--unpack-depth N`` reaches ScanOptions.unpack_depth; 0 makes an archive opaque."""
    from keyscope.cli import main

    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "tar", "-cf", "a.tar", "a.env")
    (tmp_path / "a.env").unlink()
    argv = ["scan", "-q", "-j", "1", "--format", "json", "--fail-on", "never", str(tmp_path)]
    main(argv)
    assert '"a.env"' in capsys.readouterr().out
    main([*argv[:1], "--unpack-depth", "0", *argv[1:]])
    out = capsys.readouterr().out
    assert "archacct" in out and '"a.env"' not in out  # found in the raw tar bytes
    with pytest.raises(SystemExit):
        main([*argv[:1], "--unpack-depth", "-1", *argv[1:]])
    assert "expected 0" in capsys.readouterr().err


def test_keyscope_models_unpacks_nothing(tmp_path: Path) -> None:
    """Members are scanned for secrets only: ``keyscope models`` lists no member."""
    (tmp_path / "a.env").write_text("x\n")
    _run(tmp_path, "zip", "-q", "-P", "pw", "locked.zip", "a.env")
    result = _scan(tmp_path / "locked.zip", secrets=False)
    assert not result.skipped and not result.findings


def test_reports_show_the_member_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Text: ``outer!/member:LINE:COL``, decoded layers still in parentheses; JSON keeps
    ``origin`` as the member chain (and validates: the schema tests run every format)."""
    import base64
    import json

    from keyscope.cli import main

    src = tmp_path / "src"
    (src / "assets").mkdir(parents=True)
    secret = _secret()
    (src / "assets" / "config.env").write_text("# x\n" + secret)
    (src / "b64.txt").write_text(base64.b64encode(secret.encode()).decode())
    _run(src, "zip", "-q", "-r", str(tmp_path / "app.apk"), "assets", "b64.txt")
    argv = ["scan", "-q", "-j", "1", "--all-locations", "--fail-on", "never",
            str(tmp_path / "app.apk")]
    main(argv)
    out = capsys.readouterr().out
    assert "app.apk!/assets/config.env:2:1  URL=" in out
    assert "app.apk!/b64.txt:1:1 (base64)" in out
    main([*argv, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SCAN_SCHEMA.read_text()))
    [finding] = doc["findings"]
    assert sorted(loc["origin"] for loc in finding["locations"]) == [
        ["assets/config.env"], ["b64.txt", "base64"]
    ]


def test_sarif_keeps_one_result_per_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same secret at the same line and column of two members is two results, each
    on the outer file, naming its member; the document validates."""
    import json

    from keyscope.cli import main

    src = tmp_path / "src"
    src.mkdir()
    secret = _secret()
    for name in ("a.env", "b.env"):
        (src / name).write_text(secret)
    _run(src, "zip", "-q", str(tmp_path / "app.whl"), "a.env", "b.env")
    monkeypatch.chdir(tmp_path)
    main(["scan", "-q", "-j", "1", "--fail-on", "never", "--format", "sarif", "app.whl"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))
    results = doc["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in results] == ["app.whl", "app.whl"]
    assert sorted(r["message"]["text"].rsplit("(found inside: ", 1)[1] for r in results) == [
        "a.env)", "b.env)"
    ]
    # nested artifacts: the outer file, each member with parentIndex; each result on
    # the outer file, its related location in the member
    artifacts = doc["runs"][0]["artifacts"]
    assert artifacts[0] == {"location": {"uri": "app.whl", "uriBaseId": "%SRCROOT%"}}
    assert sorted((a["location"]["uri"], a["parentIndex"]) for a in artifacts[1:]) == [
        ("a.env", 0), ("b.env", 0)
    ]
    for r in results:
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 0
        [related] = r["relatedLocations"]
        member = artifacts[related["physicalLocation"]["artifactLocation"]["index"]]
        assert related["message"]["text"] == "inside app.whl!/" + member["location"]["uri"]


def test_a_member_with_a_bad_crc_is_read_as_pytorch_reads_it(tmp_path: Path) -> None:
    """``zipfile`` refuses a CRC mismatch; the member is read all the same (as PyTorch's
    loader and ``modelfiles`` read it), so a damaged checkpoint adds no skipped entry."""
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "zip", "-q", "-0", "crc.zip", "a.env")
    data = bytearray((tmp_path / "crc.zip").read_bytes())
    for header in (0, data.rfind(b"PK\x01\x02")):  # the CRC in both headers
        crc = 14 if header == 0 else 16
        data[header + crc] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    result = _scan(tmp_path / "crc.zip")
    assert _origins(result) == [("a.env",)] and not result.skipped


def test_a_zip_comment_is_scanned(tmp_path: Path) -> None:
    """The archive's own bytes are no longer scanned raw: its comment is a member."""
    (tmp_path / "a.txt").write_text("nothing\n")
    _run(tmp_path, "zip", "-q", "c.zip", "a.txt")
    subprocess.run(["zip", "-q", "-z", "c.zip"], cwd=tmp_path, input=_secret().encode(),
                   check=True)
    assert _origins(_scan(tmp_path / "c.zip")) == [("<zip comment>",)]


def test_a_zip_member_that_lies_about_its_size_is_not_inflated_past_the_limit(
    tmp_path: Path,
) -> None:
    """A member declaring 10 bytes that inflates past the member limit (sizes patched by hand: no
    tool writes a lie): zipfile stops at the declared size and refuses the CRC, the
    lenient reader stops at the member limit; one skipped entry, the rest is read."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(archives.MEMBER_BYTES + 1))
        z.writestr("a.env", _secret())
    data = bytearray(path.read_bytes())
    cd = data.find(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")  # uncompressed size, central
    data[22:26] = (10).to_bytes(4, "little")  # and local
    path.write_bytes(bytes(data))
    result = _scan(path)
    assert _origins(result) == [("a.env",)]
    [skipped] = result.skipped
    assert skipped.path.endswith("liar.zip!/zeros.bin") and "cannot be read" in skipped.reason


def test_an_archive_in_git_history_keeps_its_member_and_provenance(tmp_path: Path) -> None:
    """A zip committed, then deleted: its member's secret is reported with the member
    chain and the commits that added and removed the archive."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "a.env").write_text(_secret())
    _run(tmp_path, "zip", "-q", str(repo / "bundle.jar"), "a.env")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    _run(repo, *git, "init", "-q", "-b", "main")
    _run(repo, *git, "add", "bundle.jar")
    _run(repo, *git, "commit", "-qm", "add")
    _run(repo, *git, "rm", "-q", "bundle.jar")
    _run(repo, *git, "commit", "-qm", "remove")
    [finding] = _scan(repo).findings
    [loc] = finding.locations
    assert loc.path.endswith("bundle.jar") and loc.origin == ("a.env",)
    assert loc.git is not None and loc.git.commit is not None
