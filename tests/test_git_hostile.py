"""A scanned repository is hostile input: its own configuration (fsmonitor, filters,
hooks, pagers, external diff, textconv, signature programs, ssh command), option-like
file and ref names, credentials in remote URLs and user-given revisions must not make
keyscope run anything, write anything or leak anything, and the scan still finds the
planted secrets. Real repositories, real git; every hostile command would create a
marker file."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.errors import KeyscopeError
from keyscope.scan import ScanOptions, scan
from keyscope.sources.git import Selection
from keyscope.sources.git_provenance import _parse, _tokens
from keyscope.sources.remote import is_remote, split_credentials
from tests.sdk import NOW, new_key
from tests.test_git_history import ALICE, BOB, Repo, sas_url

HOSTILE_KEYS = (
    "core.fsmonitor",
    "filter.evil.clean",
    "filter.evil.smudge",
    "filter.evil.process",
    "diff.evil.textconv",
    "diff.evil.command",
    "diff.external",
    "core.pager",
    "pager.log",
    "pager.status",
    "core.sshCommand",
    "core.gitProxy",
    "core.askPass",
    "gpg.program",
    "core.editor",
    "sequence.editor",
    "credential.helper",
    "core.alternateRefsCommand",
)


def signed_copy(repo: Repo, ref: str) -> None:
    """A commit carrying a (bogus) PGP signature on ``ref``: with log.showSignature,
    git log would run gpg.program on it."""
    body = repo.git("cat-file", "commit", "HEAD")
    header, _, message = body.partition("\n\n")
    signature = ("gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n"
                 " -----END PGP SIGNATURE-----")
    raw = f"{header}\n{signature}\n\n{message}\n"
    oid = subprocess.run(["git", "-C", str(repo.path), "hash-object", "-t", "commit", "-w",
                          "--stdin"], input=raw, text=True, capture_output=True,
                         check=True).stdout.strip()
    repo.git("update-ref", ref, oid)


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Repo, Path, str, str]:
    """A repository whose config runs a marker-writing command for every setting git
    knows; a committed secret, and an untracked one in the work tree."""
    markers = tmp_path / "markers"
    markers.mkdir()
    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    committed = sas_url("hostilecommitted", new_key(), datetime(2040, 1, 1, tzinfo=UTC))
    repo.write(".gitattributes", "* filter=evil diff=evil\n")
    repo.write("config/app.env", f"URL={committed}\n")
    repo.write("--output=owned", "an option-like file name\n")
    repo.write("-rf", "another one\n")
    repo.write("notes.txt", "nothing here\n")
    repo.commit("one", "one", ALICE, "2024-01-01T00:00:00+00:00")
    repo.git("update-ref", "refs/heads/--output=owned-by-ref", "HEAD")
    signed_copy(repo, "refs/heads/signed")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("pre-commit", "post-checkout", "reference-transaction", "pre-auto-gc",
                 "post-index-change", "fsmonitor-watchman", "post-rewrite"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(markers / ('hook-' + name)))}\n")
        hook.chmod(0o755)
    programs = tmp_path / "bin"
    programs.mkdir()
    for key in HOSTILE_KEYS:
        # a program, not a shell line: gpg.program and core.gitProxy are run directly
        program = programs / key
        program.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(markers / key))}\nexit 1\n")
        program.chmod(0o755)
        repo.git("config", key, str(program))
    repo.git("config", "core.hooksPath", str(hooks))
    repo.git("config", "log.showSignature", "true")
    repo.git("config", "diff.evil.cachetextconv", "false")
    repo.git("config", "filter.evil.required", "false")
    # A tracked file whose stat no longer matches the index: git status would hash it
    # again, through the clean filter.
    os.utime(repo.path / "notes.txt", (1_600_000_000, 1_600_000_000))
    untracked = sas_url("hostileuntracked", new_key(), datetime(2040, 1, 1, tzinfo=UTC))
    repo.write("scratch.md", f"{untracked}\n")
    assert list(markers.iterdir()) == []
    return repo, markers, committed, untracked


def test_scanning_a_hostile_repository_runs_nothing(hostile: tuple[Repo, Path, str, str],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    repo, markers, _, _ = hostile
    monkeypatch.chdir(repo.path)  # an --output=... would land here
    codes = [main(["scan", "-j", "1", "--format", fmt, "--now", "2026-11-26T00:00:00Z",
                   str(repo.path)]) for fmt in ("text", "json", "sarif")]
    assert sorted(p.name for p in markers.iterdir()) == []
    assert codes == [1, 1, 1], capsys.readouterr().err
    result = scan([str(repo.path)], ScanOptions(jobs=1, now=NOW))
    accounts = {f.explanation.access.account: f for f in result.findings}
    assert set(accounts) == {"hostilecommitted", "hostileuntracked"}
    (loc,) = accounts["hostilecommitted"].locations
    assert loc.git is not None and loc.git.present_at_head
    (loc,) = accounts["hostileuntracked"].locations
    assert loc.path.endswith("scratch.md") and loc.git is None
    for selection in (Selection(branch="main"), Selection(since="main"),
                      Selection(revision_range="main~0..main"), Selection(all_objects=True)):
        scan([str(repo.path)], ScanOptions(jobs=1, now=NOW, selection=selection))
    assert sorted(p.name for p in markers.iterdir()) == []
    # --staged: stage with the hostile settings switched off for the test's own git
    repo.git("-c", "core.fsmonitor=false", "-c", "filter.evil.clean=cat", "-c",
             "filter.evil.process=", "-c", f"core.hooksPath={os.devnull}", "add", "scratch.md")
    assert sorted(p.name for p in markers.iterdir()) == []
    scan([str(repo.path)], ScanOptions(jobs=1, now=NOW, selection=Selection(staged=True)))
    assert sorted(p.name for p in markers.iterdir()) == []
    assert not list(repo.path.glob("owned*"))


def test_option_like_revisions_are_refused(hostile: tuple[Repo, Path, str, str],
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    repo, _, _, _ = hostile
    monkeypatch.chdir(repo.path)
    victim = repo.path / "victim.txt"
    victim.write_text("precious\n")
    for flag in ("--branch", "--since", "--range"):
        code = main(["scan", "-j", "1", f"{flag}=--output={victim}", str(repo.path)])
        assert victim.read_text() == "precious\n"
        assert code == 2
        assert "must not start with '-'" in capsys.readouterr().err


def test_a_repository_owned_by_someone_else_is_reported_not_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = Repo(tmp_path / "theirs")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    url = sas_url("otheruseracct", new_key(), datetime(2040, 1, 1, tzinfo=UTC))
    repo.write("a.env", f"URL={url}\n")
    repo.commit("leak", "leak", ALICE, "2024-01-01T00:00:00+00:00")
    repo.write("a.env", "URL=\n")
    repo.commit("gone", "gone", BOB, "2024-01-02T00:00:00+00:00")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no safe.directory of the user's
    if os.geteuid() == 0:
        for path in [repo.path, *repo.path.rglob("*")]:
            os.lchown(path, 4242, 4242)
    else:  # git's own switch for the same check, for an unprivileged test run
        monkeypatch.setenv("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1")
    assert main(["scan", "-j", "1", str(repo.path)]) == 2
    err = capsys.readouterr().err
    assert "owned by another user" in err and "--no-git" in err
    with pytest.raises(KeyscopeError):
        scan([str(repo.path)], ScanOptions(jobs=1, now=NOW))


class _Recorder(http.server.SimpleHTTPRequestHandler):
    seen_auth: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization"))
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dumb_http(tmp_path: Path, hostile: tuple[Repo, Path, str, str]) -> Iterator[str]:
    """The hostile repository served over git's dumb HTTP protocol on loopback."""
    repo, _, _, _ = hostile
    served = tmp_path / "served"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(served / "r.git")],
                   check=True, capture_output=True)
    subprocess.run(["git", "-C", str(served / "r.git"), "update-server-info"], check=True)
    _Recorder.seen_auth = []

    def handler(*args: object) -> _Recorder:
        return _Recorder(*args, directory=str(served))  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}/r.git"
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_in_a_remote_url_are_never_stored_or_shown(
        dumb_http: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = "ghp_" + "S3cr3tT0ken" * 3
    cache = tmp_path / "cache"
    url = f"http://alice:{token}@{dumb_http}"
    # what an older keyscope left behind: a mirror named after, and holding, the URL
    stale = cache / "repos" / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"
    subprocess.run(["git", "clone", "-q", "--mirror", url, str(stale)], check=True,
                   capture_output=True)
    assert token in (stale / "config").read_text()
    _Recorder.seen_auth.clear()
    for _ in range(2):  # clone, then fetch into the mirror
        result = scan([url], ScanOptions(jobs=1, now=NOW, cache_dir=cache))
        assert "hostilecommitted" in {f.explanation.access.account for f in result.findings}
        # a mirror an older keyscope left with the token in its URL is cleaned on fetch
        (mirror,) = (cache / "repos").glob("*.git")
        subprocess.run(["git", "-C", str(mirror), "config", "remote.origin.url", url], check=True)
    scan([url], ScanOptions(jobs=1, now=NOW, cache_dir=cache))
    stored = [p for p in (cache / "repos").rglob("*") if p.is_file()]
    assert stored and not [p for p in stored if token.encode() in p.read_bytes()]
    # the credentials were still sent, with every request
    assert _Recorder.seen_auth and all(a and a.startswith("Basic ") for a in _Recorder.seen_auth)
    assert stat.S_IMODE((cache / "repos").stat().st_mode) == 0o700
    # a failing clone does not print the token either
    assert main(["scan", "-j", "1", f"http://alice:{token}@127.0.0.1:9/nothing.git"]) == 2
    err = capsys.readouterr().err
    assert "cannot clone http://127.0.0.1:9/nothing.git" in err and token not in err


def test_one_failing_remote_among_several_is_skipped_and_the_rest_scanned(
        dumb_http: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A target list (``scan URL URL …``, ``--targets``): a repository that cannot be
    cloned is a skipped entry with the reason, not the end of the scan; its
    credentials are not shown."""
    token = "ghp_" + "An0th3rT0ken" * 3
    bad = f"http://alice:{token}@127.0.0.1:9/nothing.git"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["scan", "-q", "-j", "1", "--format", "json", "--fail-on", "never",
                 f"http://{dumb_http}", bad])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert "hostilecommitted" in {f["explanation"]["access"]["account"] for f in doc["findings"]}
    [entry] = [s for s in doc["skipped"] if "127.0.0.1:9" in s["path"]]
    assert entry["path"] == "127.0.0.1:9/nothing"
    assert "cannot clone http://127.0.0.1:9/nothing.git" in entry["reason"]
    assert token not in out and token not in err


def test_remote_targets_and_credentials_are_parsed_safely() -> None:
    assert not is_remote("-uevil@host:repo")  # would reach git clone as an option
    assert is_remote("git@github.com:org/repo.git")
    assert split_credentials("https://x:tok@h.example/r.git") == (
        "https://h.example/r.git", "x:tok")
    assert split_credentials("https://tok@h.example/r.git") == ("https://h.example/r.git", "tok")
    assert split_credentials("ssh://git:pw@h.example/r.git") == ("ssh://git@h.example/r.git", None)
    assert split_credentials("git@h.example:r.git") == ("git@h.example:r.git", None)


def test_work_tree_changes_are_found_without_git_status(tmp_path: Path) -> None:
    from keyscope.sources.git import worktree_changes

    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    for name in ("same.txt", "edited.txt", "deleted.txt", "touched.txt", "café.txt"):
        repo.write(name, "0123456789\n")
    repo.commit("one", "one", ALICE, "2024-01-01T00:00:00+00:00")
    repo.write("edited.txt", "0123456780\n")  # same size, other bytes
    os.utime(repo.path / "edited.txt", (1_600_000_000, 1_600_000_000))
    (repo.path / "deleted.txt").unlink()
    os.utime(repo.path / "touched.txt", (1_600_000_000, 1_600_000_000))  # bytes unchanged
    repo.write("café.txt", "changed\n")
    repo.write("staged.txt", "new\n")
    repo.git("add", "staged.txt")
    repo.write("untracked.txt", "new\n")
    repo.write(".gitignore", "ignored.txt\n")
    repo.write("ignored.txt", "new\n")
    assert sorted(worktree_changes(repo.path)) == [
        ".gitignore", "café.txt", "edited.txt", "staged.txt", "untracked.txt"]


_PIECES = [b"\x00", b"\x01", b"\n", b":", b":100644 100644 ", b" M", b"\xff\xfe", b"a" * 40,
           b"caf\xc3\xa9.env", b"--output=x", b"\x01" + b"0" * 40]


@settings(max_examples=300, deadline=None, database=None)
@example([b"\x01c", b"\x00a\x00e\x00d\x00c\x00s\x00", b":100644 100644 \xff\xfe x M", b"\x00p"], 7)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=64)), max_size=60),
       st.integers(min_value=1, max_value=70))
def test_git_log_output_parser_survives_any_bytes(pieces: list[bytes], chunk: int) -> None:
    """The parser of ``git log -z --raw`` never raises on what a hostile repository (or a
    broken git) could make it read, whatever the read size, and yields only text."""

    class Stream:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, n: int) -> bytes:
            out, self.data = self.data[:chunk], self.data[chunk:]
            return out

    for commit, old, new, path in _parse(_tokens(Stream(b"".join(pieces)))):
        assert all(isinstance(x, str) for x in (commit.id, commit.subject, old, new, path))


def test_an_oversized_staged_blob_is_skipped_without_being_held(tmp_path: Path) -> None:
    """For --staged (and the provenance rescan) a blob's size is first known from
    cat-file's header: one over --max-file-size is drained from the pipe, never held
    in memory whole (a staged multi-gigabyte file must not exhaust the machine)."""
    repo = Repo(tmp_path / "r")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    repo.write("a.txt", "hello\n")
    repo.commit("one", "one", ALICE, "2024-01-01T00:00:00+00:00")
    with open(repo.path / "big.bin", "wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # zeros: quick for git to store
    repo.git("add", "big.bin")
    # VmHWM is this process's own peak (getrusage's ru_maxrss keeps the peak of the
    # forking test process across exec)
    probe = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from keyscope.cli import main\n"
        "rc = main(['scan', '--staged', '-q', '-j', '1', '--format', 'json', "
        "'--max-file-size', '1M', '--fail-on', 'never', sys.argv[1]])\n"
        "status = Path('/proc/self/status').read_text()\n"
        "print(re.search(r'VmHWM:\\s*(\\d+)', status).group(1), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(repo.path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert "larger than --max-file-size" in done.stdout
    assert peak_kib < 160 * 1024, f"peak RSS {peak_kib // 1024} MiB with a 200 MiB blob skipped"
