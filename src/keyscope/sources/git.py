"""Git repositories: every unique blob in the history, read from the object database.

Blobs are listed once each (by object id) with ``git rev-list --objects`` and read
with ``git cat-file --batch``, a long-lived process per worker that streams objects
straight out of the packs: no ``git log -p`` parsing, no checkout. Provenance (which
commit brought a blob in, who, when, is it still at HEAD) is computed only for blobs
that matched, in ``git_provenance.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from keyscope.errors import KeyscopeError
from keyscope.sources.interface import Blob, Skipped

# Keep git's own memory bounded whatever the repository size: pack windows are
# unmapped past the limit, and the delta cache stays small.
BOUNDED_MEMORY = (
    "core.packedGitWindowSize=16m",
    "core.packedGitLimit=96m",
    "core.deltaBaseCacheLimit=48m",
)
# A scanned repository's own configuration must not run anything. These overrides
# (command line beats the repository's config) switch off every setting that names a
# program git could start for the commands keyscope runs: fsmonitor, hooks, pagers,
# signature checks, external diff; no transport at all (a partial clone would fetch
# missing objects through the repository's remote); no maintenance after a fetch.
# Content filters (filter.*.clean/smudge/process, textconv) are never triggered: only
# plumbing that reads the object database runs, and work-tree files are hashed here.
NO_EXECUTION = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.askPass=",
    "core.sshCommand=false",
    "core.gitProxy=",
    "core.useReplaceRefs=false",
    "diff.external=",
    "log.showSignature=false",
    "gpg.program=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "protocol.allow=never",
)
REQUEST_CHUNK = 512  # 512 requests of 41 bytes stay well under a 64 KiB pipe buffer
CHECK_FORMAT = "%(objectname) %(objecttype) %(objectsize) %(rest)"


def _config(settings: tuple[str, ...]) -> list[str]:
    return [arg for setting in settings for arg in ("-c", setting)]


def git_argv(repo: Path, *args: str, config: tuple[str, ...] = NO_EXECUTION) -> list[str]:
    """The argument list to run ``git args`` in ``repo`` with ``config`` overrides."""
    return ["git", *_config(config), "-C", str(repo), *args]


def git_env() -> dict[str, str]:
    """The environment for every git keyscope runs: no prompt, no pager, no system
    config, no replace refs, C locale (messages are parsed)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_PAGER")
    }
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_PAGER="cat",
        GIT_PROTOCOL_FROM_USER="0",
        LC_ALL="C",
    )
    return env


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


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    config: tuple[str, ...] = NO_EXECUTION,
    env: dict[str, str] | None = None,
) -> bytes:
    """Run git in ``repo`` (see ``NO_EXECUTION``); a failure becomes a GitError naming
    the command."""
    try:
        proc = subprocess.run(
            git_argv(repo, *args, config=config),
            input=input,
            capture_output=True,
            check=False,
            env={**git_env(), **(env or {})},
        )
    except FileNotFoundError:
        raise GitError("git is not installed (needed to scan a repository's history)") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        fatal = [m for m in message if m.startswith(("fatal:", "error:"))] or message[-1:]
        raise GitError(f"git {' '.join(args[:3])}: {fatal[0] if fatal else 'failed'}")
    return proc.stdout


def find_repository(path: Path) -> Path | None:
    """The repository whose top level (or bare git dir) is ``path``, else None.

    A repository git refuses as not safe (owned by another user, see git's
    ``safe.directory``) is an error, not a plain directory: scanning its files alone
    would silently miss its history. keyscope does not override the check itself.
    """
    if not path.is_dir():
        return None
    if (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()):
        try:
            git(path, "rev-parse", "--git-dir")
        except GitError as exc:
            if "dubious ownership" in str(exc):
                raise GitError(
                    f"{path}: git refuses this repository: it is owned by another user "
                    "(git's safe.directory check), so its history cannot be read. If you "
                    "trust it: git config --global --add safe.directory "
                    f"{path.resolve()}; or scan its files only with --no-git"
                ) from None
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
    argv = git_argv(
        repo,
        "cat-file",
        "--batch-all-objects",
        "--unordered",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        config=NO_EXECUTION + BOUNDED_MEMORY,
    )
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env()
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
    memory stays flat whatever the size of the history. The path is only a first
    guess (provenance finds every path, NUL-safe); a name with a newline cuts it."""
    env = git_env()
    listing = subprocess.Popen(
        git_argv(
            repo,
            "rev-list",
            "--objects",
            "--filter=object:type=blob",
            "--filter-provided-objects",
            *(r for r in revs if r == "--all"),
            "--end-of-options",
            *(r for r in revs if r != "--all"),
            "--",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    checker = subprocess.Popen(
        git_argv(repo, "cat-file", f"--batch-check={CHECK_FORMAT}"),
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
    for flag, value in (
        ("--range", selection.revision_range),
        ("--branch", selection.branch),
        ("--since", selection.since),
    ):
        if value is not None and (not value or value.startswith("-")):
            raise GitError(f"{flag} {value!r}: not a revision (it must not start with '-')")
    if selection.revision_range:
        return [selection.revision_range]
    revs = [selection.branch] if selection.branch else ["--all"]
    if selection.since:
        revs.append(f"^{selection.since}")
    return revs


def _staged_blobs(repo: Path) -> Iterator[GitBlobRef]:
    """Blobs in the index that differ from HEAD (added, copied, modified, renamed):
    tree against index only, so no work-tree file and no filter is involved."""
    has_head = bool(git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).strip())
    if not has_head:
        for e in _index_entries(repo):
            if e.mode.startswith(b"10"):
                yield GitBlobRef(e.oid, 0, e.path)
        return
    out = git(
        repo,
        "diff-index",
        "--cached",
        "-z",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--diff-filter=AMT",
        "--ignore-submodules",
        "HEAD",
        "--",
    )
    fields = out.split(b"\0")
    for meta, name in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.split()
        if len(parts) == 5 and parts[1].startswith(b"10"):
            yield GitBlobRef(parts[3].decode(), 0, name.decode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class _IndexEntry:
    mode: bytes
    oid: str
    path: str
    stat: tuple[int, int, int, int] | None = None  # mtime s, mtime ns, inode, size


_DEBUG = re.compile(
    rb"  ctime: \d+:\d+\n  mtime: (\d+):(\d+)\n  dev: \d+\tino: (\d+)\n"
    rb"  uid: \d+\tgid: \d+\n  size: (\d+)\tflags: \w+\n"
)


def _index_entries(repo: Path) -> Iterator[_IndexEntry]:
    """Every stage-0 (or first-seen) index entry, with the file stat git recorded."""
    seen: set[str] = set()
    pending: _IndexEntry | None = None
    for token in git(repo, "ls-files", "-s", "-z", "--debug").split(b"\0"):
        debug = _DEBUG.match(token)
        if debug is not None:
            if pending is not None:
                mtime_s, mtime_ns, inode, size = (int(g) for g in debug.groups())
                stat_info = (mtime_s, mtime_ns, inode, size)
                pending = _IndexEntry(pending.mode, pending.oid, pending.path, stat_info)
            token = token[debug.end() :]
        if pending is not None and pending.path not in seen:
            seen.add(pending.path)
            yield pending
        meta, _, raw_path = token.partition(b"\t")
        parts = meta.split()
        pending = None
        if len(parts) == 3:
            path = raw_path.decode("utf-8", "surrogateescape")
            pending = _IndexEntry(parts[0], parts[1].decode(), path)
    if pending is not None and pending.path not in seen:
        yield pending


def worktree_changes(repo: Path) -> list[str]:
    """Work-tree files that differ from HEAD or are untracked (and not ignored).

    Nothing of the repository's runs: no ``git status`` (fsmonitor, clean filters).
    A tracked file whose index entry is HEAD's blob and whose stat is the one the
    index recorded (and not racily so) is unchanged, as git itself decides; any other
    candidate is compared with HEAD's blob by size, then by its object id hashed here
    from the bytes on disk. A file a filter (or line-ending conversion) stores
    differently is reported changed and scanned as it is on disk.
    """
    head: dict[str, tuple[str, int]] = {}
    out = git(repo, "ls-tree", "-r", "-z", "-l", "--full-tree", "HEAD", check=False)
    for entry in out.split(b"\0"):
        meta, _, raw_path = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) == 4 and parts[1] == b"blob" and parts[3].isdigit():
            head[raw_path.decode("utf-8", "surrogateescape")] = (parts[2].decode(), int(parts[3]))
    index = {e.path: e for e in _index_entries(repo)}
    untracked = git(repo, "ls-files", "-z", "--others", "--exclude-standard")
    candidates = list(index)
    candidates += [p.decode("utf-8", "surrogateescape") for p in untracked.split(b"\0") if p]
    answer = git(repo, "rev-parse", "--show-object-format", "--git-path", "index").split(b"\n")
    sha256, index_file = answer[0] == b"sha256", answer[1].decode("utf-8", "surrogateescape")
    try:
        index_mtime = os.stat(repo / index_file).st_mtime_ns
    except OSError:
        index_mtime = 0
    changed: list[str] = []
    for path in dict.fromkeys(candidates):
        try:
            st = os.lstat(repo / path)
        except OSError:
            continue  # deleted in the work tree
        if not stat.S_ISREG(st.st_mode):
            continue
        known = head.get(path)
        indexed = index.get(path)
        if known is not None and indexed and indexed.oid == known[0] and indexed.stat:
            mtime_s, mtime_ns, inode, size = indexed.stat
            if (
                (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9) == (mtime_s, mtime_ns)
                and (st.st_ino & 0xFFFFFFFF, st.st_size) == (inode, size)
                and st.st_mtime_ns < index_mtime  # else racily clean: look at the bytes
            ):
                continue
        if (
            known is None
            or known[1] != st.st_size
            or known[0] != _hash_file(repo / path, st.st_size, sha256)
        ):
            changed.append(path)
    return changed


def _hash_file(path: Path, size: int, sha256: bool) -> str | None:
    """The git blob id of a file's bytes, as they are on disk (no filters)."""
    digest = hashlib.sha256() if sha256 else hashlib.sha1()  # git's object id
    digest.update(b"blob %d\0" % size)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _discard(stream: IO[bytes], n: int) -> None:
    """Read and drop ``n`` bytes, a MiB at a time."""
    while n > 0:
        got = len(stream.read(min(n, 1 << 20)))
        if not got:
            return
        n -= got


class BlobReader:
    """A ``git cat-file --batch`` process: ask for an id, get its bytes."""

    def __init__(self, repo: Path, max_size: int) -> None:
        self.repo = repo
        self.max_size = max_size
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                git_argv(self.repo, "cat-file", "--batch", config=NO_EXECUTION + BOUNDED_MEMORY),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=git_env(),
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
                if size > self.max_size:
                    _discard(proc.stdout, size + 1)  # never held: it may be gigabytes
                    yield Skipped(
                        ref.path, f"larger than --max-file-size ({size} bytes, blob {ref.oid[:12]})"
                    )
                    continue
                data = proc.stdout.read(size)
                proc.stdout.read(1)  # the newline after each object
                yield Blob(path=ref.path, data=data, oid=ref.oid)

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            reap(self._proc, timeout=10)
            self._proc = None


def reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``proc`` to end, at most ``timeout`` seconds, without the sleeps of
    ``Popen.wait(timeout)`` (from 0.5 ms, doubling: about 5 ms after a reader's git
    has ended): Linux tells when through a process file descriptor."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or the process is already reaped
        proc.wait(timeout=timeout)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    proc.wait(timeout=timeout)
