"""Git repositories: every unique blob in the history, read from the object database.

Blobs are listed once each (by object id) with ``git rev-list --objects`` and read
with ``git cat-file --batch``, a long-lived process per worker that streams objects
straight out of the packs: no ``git log -p`` parsing, no checkout. Provenance (which
commit brought a blob in, who, when, is it still at HEAD) is computed only for blobs
that matched, in ``git_provenance.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from keyscope.errors import KeyscopeError
from keyscope.sources.interface import Blob, Skipped

# Keep git's own memory bounded whatever the repository size: pack windows are
# unmapped past the limit, and the delta cache stays small.
BOUNDED_MEMORY = (
    "-c",
    "core.packedGitWindowSize=16m",
    "-c",
    "core.packedGitLimit=96m",
    "-c",
    "core.deltaBaseCacheLimit=48m",
)
REQUEST_CHUNK = 512  # 512 requests of 41 bytes stay well under a 64 KiB pipe buffer
CHECK_FORMAT = "%(objectname) %(objecttype) %(objectsize) %(rest)"


class GitError(KeyscopeError):
    """A git command failed; the message says which and why."""


@dataclass(frozen=True)
class GitBlobRef:
    """A blob to scan: its id, size and one path it had (the first seen)."""

    oid: str
    size: int
    path: str


@dataclass(frozen=True)
class Selection:
    """Which history to read. Default: everything reachable from every ref."""

    all_objects: bool = False  # also unreachable objects (rewritten history, dropped stashes)
    since: str | None = None  # blobs reachable from refs but not from REV
    revision_range: str | None = None  # A..B
    branch: str | None = None
    staged: bool = False  # the index's changes against HEAD (pre-commit)


def git(repo: Path, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
    """Run git in ``repo``; a failure becomes a GitError naming the command."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise GitError("git is not installed (needed to scan a repository's history)") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {' '.join(args[:3])}: {message[-1] if message else 'failed'}")
    return proc.stdout


def find_repository(path: Path) -> Path | None:
    """The repository whose top level (or bare git dir) is ``path``, else None."""
    if not path.is_dir():
        return None
    if (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()):
        try:
            git(path, "rev-parse", "--git-dir")
        except GitError:
            return None
        return path
    return None


def is_bare(repo: Path) -> bool:
    return git(repo, "rev-parse", "--is-bare-repository").strip() == b"true"


def list_blobs(repo: Path, selection: Selection = Selection()) -> Iterator[GitBlobRef]:
    """Every unique blob the selection covers, each once.

    For the whole history (the default, and ``--all-objects``) the object database is
    listed straight from the pack indexes, in pack order: no history walk, flat
    memory, sequential reads. Whether a matched blob is reachable, and from where, is
    answered afterwards by provenance (``unreachable`` blobs are then dropped unless
    ``--all-objects``). Named revisions walk the history with ``rev-list``.
    """
    if selection.staged:
        yield from _staged_blobs(repo)
        return
    if selection.all_objects or _revisions(selection) == ["--all"]:
        yield from _all_blobs(repo)
        return
    yield from _stream_blob_list(repo, _revisions(selection))


def _all_blobs(repo: Path) -> Iterator[GitBlobRef]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    with subprocess.Popen(
        [
            "git",
            "-C",
            str(repo),
            *BOUNDED_MEMORY,
            "cat-file",
            "--batch-all-objects",
            "--unordered",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[1] == b"blob":
                oid = parts[0].decode()
                yield GitBlobRef(oid, int(parts[2]), f"<blob {oid[:12]}>")
        err = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
    if proc.returncode != 0:
        raise GitError(f"git cat-file --batch-all-objects: {err or 'failed'}")


def _stream_blob_list(repo: Path, revs: list[str]) -> Iterator[GitBlobRef]:
    """``rev-list --objects`` piped into ``cat-file --batch-check``, read line by line:
    memory stays flat whatever the size of the history."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    listing = subprocess.Popen(
        [
            "git",
            "-C",
            str(repo),
            "rev-list",
            "--objects",
            "--filter=object:type=blob",
            "--filter-provided-objects",
            *revs,
            "--",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    checker = subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", f"--batch-check={CHECK_FORMAT}"],
        stdin=listing.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert listing.stdout is not None and checker.stdout is not None
    listing.stdout.close()  # the checker owns the pipe now
    try:
        for line in checker.stdout:
            parts = line.rstrip(b"\n").decode("utf-8", "surrogateescape").split(" ", 3)
            if len(parts) >= 3 and parts[1] == "blob":
                yield GitBlobRef(parts[0], int(parts[2]), parts[3] if len(parts) > 3 else parts[0])
    finally:
        checker.stdout.close()
        checker.wait()
        err = listing.stderr.read().decode("utf-8", "replace").strip() if listing.stderr else ""
        if listing.wait() != 0:
            raise GitError(
                f"git rev-list {' '.join(revs)}: {err.splitlines()[-1] if err else 'failed'}"
            )


def _revisions(selection: Selection) -> list[str]:
    if selection.revision_range:
        return [selection.revision_range]
    revs = [selection.branch] if selection.branch else ["--all"]
    if selection.since:
        revs.append(f"^{selection.since}")
    return revs


def _staged_blobs(repo: Path) -> Iterator[GitBlobRef]:
    """Blobs in the index that differ from HEAD (added, copied, modified, renamed)."""
    has_head = bool(git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).strip())
    args = ["diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR"]
    if not has_head:
        args = ["ls-files", "-z", "--cached"]
    names = [n for n in git(repo, *args).split(b"\0") if n]
    if not names:
        return
    staged = git(
        repo, "ls-files", "-s", "-z", "--", *[n.decode("utf-8", "surrogateescape") for n in names]
    )
    for entry in staged.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        _mode, oid, _stage = meta.decode().split(" ")
        yield GitBlobRef(oid, 0, path.decode("utf-8", "surrogateescape"))


def worktree_changes(repo: Path) -> list[str]:
    """Work-tree files that differ from HEAD or are untracked (and not ignored)."""
    out = git(repo, "status", "--porcelain", "-z", "--untracked-files=all", "--no-renames")
    paths: list[str] = []
    for entry in out.split(b"\0"):
        if len(entry) < 4:
            continue
        status, path = entry[:2].decode(), entry[3:].decode("utf-8", "surrogateescape")
        if "D" in status:
            continue
        paths.append(path)
    return paths


class BlobReader:
    """A ``git cat-file --batch`` process: ask for an id, get its bytes."""

    def __init__(self, repo: Path, max_size: int) -> None:
        self.repo = repo
        self.max_size = max_size
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                ["git", "-C", str(self.repo), *BOUNDED_MEMORY, "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._proc

    def read(self, refs: list[GitBlobRef]) -> Iterator[Blob | Skipped]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        for start in range(0, len(refs), REQUEST_CHUNK):
            chunk = refs[start : start + REQUEST_CHUNK]
            # A chunk of requests fits in the pipe buffer, so writing it cannot block
            # while git waits for us to read its answers.
            proc.stdin.write(b"".join(r.oid.encode() + b"\n" for r in chunk))
            proc.stdin.flush()
            for ref in chunk:
                header = proc.stdout.readline().split()
                if len(header) < 3:
                    yield Skipped(ref.path, f"git object {ref.oid[:12]} is missing")
                    continue
                size = int(header[2])
                data = proc.stdout.read(size)
                proc.stdout.read(1)  # the newline after each object
                if size > self.max_size:
                    yield Skipped(
                        ref.path, f"larger than --max-file-size ({size} bytes, blob {ref.oid[:12]})"
                    )
                    continue
                yield Blob(path=ref.path, data=data, oid=ref.oid)

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            self._proc.wait(timeout=10)
            self._proc = None
