"""Hostile input for ``keyscope scan``: it never crashes or hangs, reports what it
skipped and why, and still finds a real SAS wherever it sits in the bytes.

Broken and escaping symlinks, FIFOs, files over the size limit (and a ~100 MB
one-line bundle with the SAS at the very end), binary junk, invalid UTF-8, UTF-16 with a
byte-order mark, ``.gitignore`` and excludes, standard input, property tests over
random bytes, and the CLI's exit codes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_blob_sas, generate_container_sas
from azure.storage.queue import QueueSasPermissions, generate_queue_sas
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.cli import main
from keyscope.detect.engine import make_engine
from keyscope.detect.rules import load_rules
from keyscope.model import ScanResult
from keyscope.pipeline import BlobScanner
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from tests.sdk import NOW, new_key

SAS = "azure-storage-sas"
NOW_ISO = "2026-11-26T12:00:00Z"
EXPIRY = NOW + timedelta(days=90)
START = NOW - timedelta(days=1)
BOMS = (b"\xff\xfe", b"\xfe\xff")


def _clean_key() -> str:
    """A random key that does not happen to contain a placeholder word ("fake",
    "your"…): the scanner drops those by design, and the tests must not flake on it."""
    while True:
        key = new_key()
        if not placeholder_secret(key):
            return key


def _mint(make: Callable[[str], str]) -> str:
    """An SDK-signed query whose key and signature are both clean (see above)."""
    for _ in range(50):
        query = make(_clean_key())
        if not placeholder_secret(unquote(query.split("sig=")[1])):
            return query
    raise AssertionError("could not mint a clean token")


# Critical: a blob SAS that can write.
BLOB_URL = "https://contosohostile.blob.core.windows.net/models/w.ckpt?" + _mint(
    lambda key: generate_blob_sas(
        "contosohostile", "models", "w.ckpt", account_key=key, permission="rw",
        expiry=EXPIRY, start=START,
    )
)
# High only: read and list a whole container for 90 days over HTTPS.
HIGH_URL = "https://contosohigh.blob.core.windows.net/data?" + _mint(
    lambda key: generate_container_sas(
        "contosohigh", "data", account_key=key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=EXPIRY, start=START, protocol="https",
    )
)
QUEUE_URL = "https://contosoq.queue.core.windows.net/jobs?" + _mint(
    lambda key: generate_queue_sas(
        "contosoq", "jobs", key, permission=QueueSasPermissions(read=True, process=True),
        expiry=EXPIRY, start=START,
    )
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hs-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI keeps its compiled database under XDG_CACHE_HOME: keep it in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))


def _opts(cache_dir: Path, **kwargs: object) -> ScanOptions:
    return ScanOptions(**{"jobs": 1, "now": NOW, "cache_dir": cache_dir, **kwargs})  # type: ignore[arg-type]


def _where(result: ScanResult, root: Path | None = None) -> list[tuple[str, int, str]]:
    prefix = f"{root}/" if root else ""
    return sorted(
        (loc.path.removeprefix(prefix), loc.line, f.rule_id)
        for f in result.findings
        for loc in f.locations
    )


def _skips(result: ScanResult, root: Path) -> dict[str, str]:
    return {s.path.removeprefix(f"{root}/"): s.reason for s in result.skipped}


class _Timeout(BaseException):
    """Raised by the alarm. Not TimeoutError: that is an OSError, which the walker
    catches and reports as a skipped file."""


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a blocking open() on a FIFO is interrupted too)."""

    def expired(signum: int, frame: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    except _Timeout:
        pytest.fail(f"scan still running after {seconds} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _sas_line(url: str = BLOB_URL) -> str:
    return f'MODEL_URL = "{url}"\n'


# --- what is walked ---------------------------------------------------------------------------


@pytest.mark.parametrize("follow", [False, True], ids=["default", "follow"])
def test_broken_symlink_is_reported_skipped(
    tmp_path: Path, cache_dir: Path, follow: bool
) -> None:
    (tmp_path / "ok.py").write_text(_sas_line())
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    result = scan([tmp_path], _opts(cache_dir, follow_symlinks=follow))
    assert _where(result, tmp_path) == [("ok.py", 1, SAS)]
    reasons = _skips(result, tmp_path)
    assert list(reasons) == ["dangling.txt"]
    assert "symbolic link" in reasons["dangling.txt"]


@pytest.mark.parametrize("follow", [False, True], ids=["default", "follow"])
def test_broken_symlink_named_on_the_command_line(
    tmp_path: Path, cache_dir: Path, follow: bool
) -> None:
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    result = scan([tmp_path / "dangling.txt"], _opts(cache_dir, follow_symlinks=follow))
    assert result.findings == []
    assert [s.path for s in result.skipped] == [str(tmp_path / "dangling.txt")]
    assert "symbolic link" in result.skipped[0].reason


def test_symlink_out_of_the_tree_is_followed_only_when_asked(
    tmp_path: Path, cache_dir: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x\n" + _sas_line())
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "readme.md").write_text("nothing here\n")
    (tree / "link.txt").symlink_to(outside / "secret.txt")
    (tree / "linkdir").symlink_to(outside, target_is_directory=True)

    (tree / "inner.txt").symlink_to(tree / "readme.md")  # into the tree: scanned there

    default = scan([tree], _opts(cache_dir))
    assert default.findings == []
    assert default.stats.files == 1
    assert sorted(s.path.removeprefix(str(tree) + "/") for s in default.skipped) == [
        "link.txt",
        "linkdir",
    ]
    assert all("out of the scanned tree" in s.reason for s in default.skipped)

    followed = scan([tree], _opts(cache_dir, follow_symlinks=True))
    assert _where(followed, tree) == [("link.txt", 2, SAS), ("linkdir/secret.txt", 2, SAS)]
    assert len(followed.findings) == 1  # one secret, two paths to it
    assert followed.stats.files == 4  # readme.md twice: itself and inner.txt


def test_symlink_loop_with_follow_symlinks_reads_each_file_once(
    tmp_path: Path, cache_dir: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "conf.py").write_text(_sas_line())
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    with _deadline(20):
        result = scan([tree], _opts(cache_dir, follow_symlinks=True))
    # the file is read once, not once per trip round the loop, and the loop is reported
    assert _where(result, tree) == [("sub/conf.py", 1, SAS)]
    assert result.stats.files == 1
    skips = _skips(result, tree)
    assert list(skips) == ["sub/loop"] and "loop" in skips["sub/loop"]


def test_two_symlink_loops_with_follow_symlinks_terminate(tmp_path: Path) -> None:
    """Two links back to the root: without loop detection the walk is exponential. Run
    in a child process, which the timeout kills, whatever the scan is doing."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "conf.py").write_text(_sas_line())
    (tree / "a").symlink_to(".", target_is_directory=True)
    (tree / "b").symlink_to(".", target_is_directory=True)
    command = [sys.executable, "-m", "keyscope", "scan", "--now", NOW_ISO, "-j", "1", "-q",
               "--format", "json", "--follow-symlinks", str(tree)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("scan still running after 30 s")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert [(loc["path"], loc["line"]) for f in doc["findings"] for loc in f["locations"]] == [
        (str(tree / "conf.py"), 1)
    ]
    assert sorted(s["path"] for s in doc["skipped"]) == [str(tree / "a"), str(tree / "b")]
    assert all("loop" in s["reason"] for s in doc["skipped"])


def test_fifo_is_reported_and_does_not_hang(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "ok.py").write_text(_sas_line())
    os.mkfifo(tmp_path / "pipe")
    with _deadline(10):
        result = scan([tmp_path], _opts(cache_dir))
        direct = scan([tmp_path / "pipe"], _opts(cache_dir))
        followed = scan([tmp_path], _opts(cache_dir, follow_symlinks=True))
    assert _where(result, tmp_path) == [("ok.py", 1, SAS)]
    assert list(_skips(result, tmp_path)) == ["pipe"]
    assert "not a regular file" in _skips(result, tmp_path)["pipe"]
    assert [s.path for s in direct.skipped] == [str(tmp_path / "pipe")]
    assert "not a regular file" in direct.skipped[0].reason
    assert list(_skips(followed, tmp_path)) == ["pipe"]


def test_symlink_to_a_fifo_does_not_hang(tmp_path: Path, cache_dir: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    with _deadline(10):
        named = scan([tmp_path / "link"], _opts(cache_dir))
        walked = scan([tmp_path], _opts(cache_dir, follow_symlinks=True))
    assert "not a regular file" in named.skipped[0].reason
    assert sorted(_skips(walked, tmp_path)) == ["link", "pipe"]


def test_file_over_max_file_size_is_skipped_with_its_size(
    tmp_path: Path, cache_dir: Path
) -> None:
    big = "#" * 2000 + "\n" + _sas_line()
    (tmp_path / "big.py").write_text(big)
    (tmp_path / "small.py").write_text(_sas_line(QUEUE_URL))
    result = scan([tmp_path], _opts(cache_dir, max_file_size=1000))
    assert _where(result, tmp_path) == [("small.py", 1, SAS)]
    reasons = _skips(result, tmp_path)
    assert list(reasons) == ["big.py"]
    assert str(len(big)) in reasons["big.py"] and "1000" in reasons["big.py"]
    # named directly too
    direct = scan([tmp_path / "big.py"], _opts(cache_dir, max_file_size=1000))
    assert direct.findings == [] and str(len(big)) in direct.skipped[0].reason


def test_hundred_megabyte_minified_line_with_the_sas_at_the_end(
    tmp_path: Path, cache_dir: Path
) -> None:
    chunk = b'!function(e){var t=e.length;return t>1?e.slice(0,t-1).join(","):e[0]}(r);' * 16
    tail = f'var MODEL="{BLOB_URL}";'.encode()
    path = tmp_path / "bundle.min.js"
    count = 100 * 1024 * 1024 // len(chunk)
    with path.open("wb") as f:
        for _ in range(count // 64):
            f.write(chunk * 64)
        f.write(chunk * (count % 64))
        f.write(tail)
    size = path.stat().st_size
    assert size > 100 * 1000 * 1000 and b"\n" not in chunk

    default = scan([tmp_path], _opts(cache_dir))
    assert default.findings == []
    assert [s.path for s in default.skipped] == [str(path)]
    assert str(size) in default.skipped[0].reason

    result = scan([tmp_path], _opts(cache_dir, max_file_size=200 * 1024 * 1024))
    assert result.skipped == []
    assert _where(result, tmp_path) == [("bundle.min.js", 1, SAS)]
    loc = result.findings[0].locations[0]
    assert loc.column == size - len(tail) + len('var MODEL="') + 1
    assert len(loc.snippet) < 400  # the snippet is cut, not the whole line


# --- what is in the bytes -----------------------------------------------------------------------


def _junk(n: int, seed: int) -> bytes:
    data = random.Random(seed).randbytes(n)
    return b"\0" + data if data.startswith(BOMS) else data


def test_binary_junk_with_an_embedded_sas_on_its_own_line(
    tmp_path: Path, cache_dir: Path
) -> None:
    before = _junk(20_000, 1)
    data = before + b"\n" + BLOB_URL.encode() + b"\n" + _junk(20_000, 2)
    (tmp_path / "blob.bin").write_bytes(data)
    result = scan([tmp_path], _opts(cache_dir))
    assert _where(result, tmp_path) == [("blob.bin", before.count(b"\n") + 2, SAS)]


@pytest.mark.parametrize("form", ["c-string", "pickle", "c-string-connection-string"])
def test_binary_junk_with_an_embedded_credential_as_a_binary_string(
    tmp_path: Path, cache_dir: Path, form: str
) -> None:
    """How a string sits in real binaries: NUL-terminated (compiled code, SQLite) or
    length-prefixed with an opcode right after it (a pickled checkpoint)."""
    url = BLOB_URL.encode()
    rule_id, account, endpoint = SAS, "contosohostile", "https://contosohostile.blob.core.windows.net"
    if form == "c-string":
        inner = b"\0\0" + url + b"\0\x01\x02"
    elif form == "pickle":
        inner = pickle.dumps({"weights_url": BLOB_URL, "epoch": 3}, protocol=4)
        assert url + b"\x94" in inner  # MEMOIZE follows the string
    else:
        cs = (
            f"DefaultEndpointsProtocol=https;AccountName=contosobin;AccountKey={_clean_key()};"
            "EndpointSuffix=core.windows.net"
        )
        inner = b"\0" + cs.encode() + b"\0\x07\x13"
        rule_id, account = "azure-storage-connection-string", "contosobin"
        endpoint = "https://contosobin.blob.core.windows.net"
    before = _junk(20_000, 3)
    (tmp_path / "model.bin").write_bytes(before + inner + _junk(20_000, 4))
    result = scan([tmp_path], _opts(cache_dir))
    assert _where(result, tmp_path) == [("model.bin", before.count(b"\n") + 1, rule_id)]
    a = result.findings[0].explanation.access
    assert (a.account, a.endpoint) == (account, endpoint)


def test_invalid_utf8_around_a_sas(tmp_path: Path, cache_dir: Path) -> None:
    data = (
        b"caf\xe9 latin-1 line\n"
        b"\xc3\x28 \xa0\xa1 \xed\xa0\x80 overlong \xc0\xaf\n"
        b"\x80\x81 url: " + BLOB_URL.encode() + b" \xfe\xff\xc3\n"
        b"x = '\xf0\x28\x8c\x28' ; q=\"" + QUEUE_URL.encode() + b"\"\xc3\n"
    )
    (tmp_path / "mixed.txt").write_bytes(data)
    result = scan([tmp_path], _opts(cache_dir))
    assert _where(result, tmp_path) == [("mixed.txt", 3, SAS), ("mixed.txt", 4, SAS)]
    loc = next(f for f in result.findings if f.explanation.access.account == "contosohostile")
    assert loc.locations[0].column == len(b"\x80\x81 url: ") + 1


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, cache_dir: Path, codec: str) -> None:
    bom = b"\xff\xfe" if codec == "utf-16-le" else b"\xfe\xff"
    text = f"# Modèle: été\r\nsettings:\r\n  url: {BLOB_URL}\r\n  other: 1\r\n"
    (tmp_path / "notes.txt").write_bytes(bom + text.encode(codec))
    result = scan([tmp_path], _opts(cache_dir))
    assert _where(result, tmp_path) == [("notes.txt", 3, SAS)]
    assert result.findings[0].explanation.access.account == "contosohostile"


# --- what is excluded ---------------------------------------------------------------------------


def _ignore_tree(root: Path) -> None:
    (root / ".gitignore").write_text("*.secret\nlogs/\n")
    (root / "kept.py").write_text(_sas_line())
    (root / "app.secret").write_text("\n" + _sas_line(QUEUE_URL))
    (root / "logs").mkdir()
    (root / "logs" / "run.txt").write_text("\n\n" + _sas_line(HIGH_URL))


def test_gitignore_is_respected_by_default(tmp_path: Path, cache_dir: Path) -> None:
    _ignore_tree(tmp_path)
    result = scan([tmp_path], _opts(cache_dir))
    assert _where(result, tmp_path) == [("kept.py", 1, SAS)]
    assert result.skipped == []
    assert result.stats.files == 2  # kept.py and .gitignore

    everything = scan([tmp_path], _opts(cache_dir, respect_gitignore=False))
    assert _where(everything, tmp_path) == [
        ("app.secret", 2, SAS),
        ("kept.py", 1, SAS),
        ("logs/run.txt", 3, SAS),
    ]


def test_cli_no_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _ignore_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    base = ["scan", "--now", NOW_ISO, "-j", "1", "-q", "--format", "json"]
    assert main([*base, "."]) == 1
    paths = [loc["path"] for f in json.loads(capsys.readouterr().out)["findings"]
             for loc in f["locations"]]
    assert paths == ["kept.py"]
    assert main([*base, "--no-ignore", "."]) == 1
    doc = json.loads(capsys.readouterr().out)
    paths = sorted(loc["path"] for f in doc["findings"] for loc in f["locations"])
    assert paths == ["app.secret", "kept.py", "logs/run.txt"]


def test_excludes_skip_matching_files(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "kept.py").write_text(_sas_line())
    (tmp_path / "debug.log").write_text(_sas_line(QUEUE_URL))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "trace.log").write_text(_sas_line(HIGH_URL))
    result = scan([tmp_path], _opts(cache_dir, excludes=("*.log",)))
    assert _where(result, tmp_path) == [("kept.py", 1, SAS)]
    assert result.stats.files == 1
    assert len(scan([tmp_path], _opts(cache_dir)).findings) == 3


# --- standard input -----------------------------------------------------------------------------


def test_stdin_library(cache_dir: Path) -> None:
    data = b"\xff\x00 junk\n" + _sas_line().encode() + b"more\n"
    result = scan(["-"], _opts(cache_dir), stdin=data)
    assert _where(result) == [("<stdin>", 2, SAS)]
    assert result.stats.files == 1 and result.stats.bytes == len(data)
    empty = scan(["-"], _opts(cache_dir), stdin=b"")
    assert empty.findings == [] and empty.skipped == []


def test_stdin_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"line one\nline two\n" + _sas_line().encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["scan", "--now", NOW_ISO, "-j", "1", "-q", "--format", "json", "-"])
    assert code == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(f["rule_id"], loc["path"], loc["line"]) for f in doc["findings"]
            for loc in f["locations"]] == [(SAS, "<stdin>", 3)]
    assert doc["stats"]["files"] == 1


# --- property tests -----------------------------------------------------------------------------

SCANNERS = {name: BlobScanner(make_engine(name, load_rules()), NOW) for name in ("hyperscan", "re")}
SCANNER = SCANNERS["hyperscan"]
_CONN = (
    f"DefaultEndpointsProtocol=https;AccountName=contosoprop;AccountKey={_clean_key()};"
    "EndpointSuffix=core.windows.net"
)
_AZ = "--account-name contosoprop --account-key "
# payload -> (rule id, column, origin) it must be reported with
PAYLOADS: dict[bytes, tuple[str, int, tuple[str, ...]]] = {
    BLOB_URL.encode(): (SAS, 1, ()),
    _CONN.encode(): ("azure-storage-connection-string", 1, ()),
    base64.b64encode(_CONN.encode()): ("azure-storage-connection-string", 1, ("base64",)),
    f"{_AZ}{_clean_key()}".encode(): ("azure-storage-account-key", len(_AZ) + 1, ()),
}
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.binary(max_size=4096))
@example(b"sig=" + b"A" * 4000)
@example(b"\xff\xfe" + b"s\x00i\x00g\x00=\x00")
@example(b"\xfe\xff\x00")
@example(b"AccountKey=" * 300)
@example(base64.b64encode(b"AccountKey=" * 100))
def test_random_bytes_never_raise(data: bytes) -> None:
    for scanner in SCANNERS.values():
        result = scanner.scan(Blob(path="junk", data=data))
        assert result.findings == []


@PROPERTY
@given(
    st.binary(max_size=2048),
    st.binary(max_size=2048),
    st.integers(0, 4096),
    st.sampled_from(list(PAYLOADS)),
)
def test_credential_spliced_anywhere_never_raises(
    before: bytes, after: bytes, cut: int, payload: bytes
) -> None:
    data = before + after
    cut = min(cut, len(data))
    for scanner in SCANNERS.values():
        scanner.scan(Blob(path="junk", data=data[:cut] + payload + data[cut:]))


@PROPERTY
@given(
    # a byte-order mark makes the blob UTF-16; "keyscope:ignore-next-line" on the line
    # before silences the finding (hypothesis finds both)
    st.binary(max_size=2048).filter(
        lambda b: not b.startswith(BOMS) and b"keyscope:ignore" not in b
    ),
    st.binary(max_size=2048),
    st.sampled_from(list(PAYLOADS)),
)
@example(b"", b"", BLOB_URL.encode())
@example(b"\x00sig=", b"&sig=\xff", BLOB_URL.encode())
def test_credential_spliced_between_newlines_is_found(
    before: bytes, after: bytes, payload: bytes
) -> None:
    """Whatever bytes surround it, a credential on its own line is found there, by
    both engines."""
    data = before + b"\n" + payload + b"\n" + after
    rule_id, column, origin = PAYLOADS[payload]
    for scanner in SCANNERS.values():
        result = scanner.scan(Blob(path="junk", data=data))
        assert [(f.rule_id, f.location.line, f.location.column, f.location.origin)
                for f in result.findings] == [(rule_id, before.count(b"\n") + 2, column, origin)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1024))
def test_random_stdin_through_scan_never_raises(data: bytes) -> None:
    result = scan(["-"], ScanOptions(jobs=1, now=NOW), stdin=data)
    assert result.findings == [] and result.stats.files == 1


# --- CLI exit codes and output ------------------------------------------------------------------


def _cli(*args: str) -> int:
    return main(["scan", "--now", NOW_ISO, "-j", "1", "-q", *args])


def test_exit_0_without_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.py").write_text("print('hello')\n")
    assert _cli(str(tmp_path)) == 0
    assert "0 findings" in capsys.readouterr().out


def test_exit_1_with_a_finding_at_the_default_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text(_sas_line())
    assert _cli(str(tmp_path)) == 1
    assert _cli("--fail-on", "critical", str(tmp_path)) == 1
    assert _cli("--fail-on", "never", str(tmp_path)) == 0


def test_fail_on_above_the_only_finding_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text(_sas_line(HIGH_URL))
    assert _cli("--format", "json", str(tmp_path)) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["severity"] for f in doc["findings"]] == ["high"]
    assert _cli("--fail-on", "critical", str(tmp_path)) == 0
    assert _cli("--fail-on", "high", str(tmp_path)) == 1


def test_exit_2_on_a_bad_flag_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text(_sas_line())
    assert _cli("--max-file-size", "lots", str(tmp_path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("keyscope: error:") and "lots" in captured.err
    assert "Traceback" not in captured.err
    with pytest.raises(SystemExit) as exc:
        _cli("--fail-on", "sometimes", str(tmp_path))
    assert exc.value.code == 2


def test_max_file_size_suffixes_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text("#" * 3000 + "\n" + _sas_line())
    assert _cli("--format", "json", "--max-file-size", "2K", str(tmp_path)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"] == []
    assert [s["path"] for s in doc["skipped"]] == [str(tmp_path / "a.py")]
    assert _cli("--max-file-size", "1M", str(tmp_path)) == 1


def test_output_file_gets_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("\n" + _sas_line())
    report = tmp_path / "report.json"
    code = main(["scan", "--now", NOW_ISO, "-j", "1", "--format", "json", "-o", str(report),
                 str(tree)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "1 finding" in captured.err  # the summary line goes to stderr
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert [(f["rule_id"], loc["path"], loc["line"]) for f in doc["findings"]
            for loc in f["locations"]] == [(SAS, str(tree / "a.py"), 2)]
    assert BLOB_URL.split("sig=")[1] not in report.read_text()


def test_parallel_scan_of_hostile_tree(tmp_path: Path, cache_dir: Path) -> None:
    """Everything above in one tree, scanned with two workers: same result as one."""
    (tmp_path / "ok.py").write_text(_sas_line())
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "junk.bin").write_bytes(_junk(2000, 7) + b"\n" + QUEUE_URL.encode() + b"\n")
    (tmp_path / "big.txt").write_text("x" * 5000)
    for i in range(300):
        (tmp_path / f"f{i:03}.txt").write_text(f"file {i}\n")
    (tmp_path / "zz.txt").write_text(_sas_line())
    with _deadline(30):
        one = scan([tmp_path], _opts(cache_dir, max_file_size=4096))
        two = scan([tmp_path], _opts(cache_dir, max_file_size=4096, jobs=2))
    for result in (one, two):
        assert _where(result, tmp_path) == [
            ("junk.bin", _junk(2000, 7).count(b"\n") + 2, SAS),
            ("ok.py", 1, SAS),
            ("zz.txt", 1, SAS),
        ]
        assert sorted(_skips(result, tmp_path)) == ["big.txt", "dangling", "pipe"]
        assert len(result.findings) == 2
    assert [f.fingerprint for f in one.findings] == [f.fingerprint for f in two.findings]
