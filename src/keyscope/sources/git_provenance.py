"""Provenance of a matched secret: at which paths it was in the history, the commit
that first made it appear at each path and the commit that made it disappear, who,
when, and whether it is still at HEAD.

Provenance follows the secret's presence at a path, not one blob's identity: editing
another line of the file makes a new blob that still holds the secret, and is neither
a removal nor an introduction. "Holds the secret" is known from the scan itself (the
set of blobs whose findings carry the secret's fingerprint), so no blob is read here.

Computed only for blobs that matched, in one streamed ``git log`` walk for all of
them, so a history with no findings costs nothing here.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from keyscope.model import GitProvenance
from keyscope.sources.git import git, git_argv, git_env

_FORMAT = "%x01%H%x00%an%x00%ae%x00%aI%x00%cn%x00%s%x00%ce"
_FIELDS = 7


@dataclass(frozen=True)
class Commit:
    id: str
    author: str
    email: str
    date: str
    committer: str
    subject: str
    committer_email: str


@dataclass(frozen=True)
class Change:
    """One path changed by one commit (against its first parent): blob ``old`` → ``new``
    (all zeros when the path did not exist)."""

    commit: Commit
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class PathPresence:
    """The secret at one path: the blob to show it from, and its provenance."""

    path: str
    blob: str
    provenance: GitProvenance


class ProvenanceIndex:
    """Answers provenance questions for one repository."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._wanted: set[str] = set()
        self._changes: list[Change] | None = None
        self._seen: set[str] = set()
        self._head: dict[str, str] | None = None
        self._boundary: frozenset[str] | None = None

    def head_tree(self) -> dict[str, str]:
        """path → blob id at HEAD (empty for a repository without commits)."""
        if self._head is None:
            out = git(self.repo, "ls-tree", "-r", "-z", "--full-tree", "HEAD", check=False)
            head: dict[str, str] = {}
            for entry in out.split(b"\0"):
                meta, _, path = entry.partition(b"\t")
                parts = meta.split()
                if len(parts) == 3 and parts[1] == b"blob":
                    head[path.decode("utf-8", "surrogateescape")] = parts[2].decode()
            self._head = head
        return self._head

    def shallow_boundary(self) -> frozenset[str]:
        """The commits a shallow clone's history is cut at (empty when complete)."""
        if self._boundary is None:
            path = git(self.repo, "rev-parse", "--git-path", "shallow").strip().decode()
            shallow = Path(path) if Path(path).is_absolute() else self.repo / path
            try:
                lines = shallow.read_text(encoding="ascii", errors="replace").split()
            except OSError:
                lines = []
            self._boundary = frozenset(lines)
        return self._boundary

    def want(self, oid: str) -> None:
        """Ask for ``oid``'s history; every wanted blob is answered by one walk."""
        if self._changes is not None:
            raise RuntimeError("want() after the history walk")
        self._wanted.add(oid)

    def follow_paths(self) -> set[str]:
        """For a scan of part of the history: walk every change at the paths the wanted
        blobs were at, so that versions outside the part are followed too. Returns
        the blob ids the walk saw, for the caller to find which hold which secret."""
        if self._changes is None:
            self._changes = list(self._walk(self._wanted))
        paths = {c.path for c in self._changes}
        if paths:
            self._changes = list(self._walk(None, paths))
        return {oid for oid in self._seen if oid.strip("0")}

    def presence(self, blobs: set[str]) -> list[PathPresence]:
        """Where the secret held by exactly ``blobs`` was, one entry per path, oldest
        introduction first. Blobs on no commit come back with ``commit=None``."""
        if self._changes is None:
            self._changes = list(self._walk(self._wanted | blobs))
        introduced: dict[str, Commit] = {}
        removed: dict[str, Commit] = {}
        last_blob: dict[str, str] = {}
        for change in self._changes:  # oldest first
            before, after = change.old in blobs, change.new in blobs
            if not (before or after):
                continue
            if after:
                last_blob[change.path] = change.new
                if not before:
                    introduced.setdefault(change.path, change.commit)
                    removed.pop(change.path, None)
            elif before:
                last_blob[change.path] = change.old
                removed[change.path] = change.commit
        head = self.head_tree()
        boundary = self.shallow_boundary()
        out: list[PathPresence] = []
        for path, c in sorted(introduced.items(), key=lambda kv: kv[1].date):
            at_head = head.get(path) in blobs
            gone = removed.get(path) if not at_head else None
            prov = GitProvenance(
                blob=head[path] if at_head else last_blob[path],
                commit=c.id,
                author=c.author,
                email=c.email,
                date=c.date,
                committer=c.committer,
                message=c.subject,
                committer_email=c.committer_email,
                removed_in=gone.id if gone else None,
                removed_date=gone.date if gone else None,
                removed_by=gone.author if gone else None,
                last_present=self._parent(gone.id) if gone else None,
                present_at_head=at_head,
                removed_from_head=not at_head,
                at_boundary=c.id in boundary,
            )
            out.append(PathPresence(path, prov.blob, prov))
        at_head_blobs = set(head.values())
        # Blobs on no commit of any ref have no commit to name (nor, defensively, do
        # blobs of a walk that showed no appearance of the secret).
        for oid in sorted(blobs - self._seen if introduced else blobs):
            at_head = oid in at_head_blobs
            out.append(
                PathPresence("", oid, GitProvenance(blob=oid, commit=None, present_at_head=at_head))
            )
        return out

    def _parent(self, commit: str) -> str | None:
        out = git(self.repo, "rev-parse", "--verify", "-q", f"{commit}^", check=False).strip()
        return out.decode() or None

    def _walk(self, oids: set[str] | None, paths: set[str] | None = None) -> Iterator[Change]:
        """One streamed walk of the whole history (``git log -z --raw``, merges against
        their first parent), oldest first, keeping only changes that touch ``oids``
        (with a single blob, git's own --find-object filter does the matching), or
        every change at ``paths`` (literal pathspecs, given on standard input). A walk
        of the whole history started early (:func:`prefetch`) is read instead."""
        early = _PREFETCHED.pop(str(self.repo), None) if paths is None else None
        if early is not None and oids is not None:
            out = early.output()
            try:
                return self._read(out, oids)
            finally:
                out.close()
        if early is not None:
            early.close()
        args = list(_LOG)
        if oids is not None and len(oids) == 1:
            args.append(f"--find-object={next(iter(oids))}")
        stdin = None
        if paths is not None:
            args += ["--full-history", "--stdin"]
            stdin = b"--\n" + b"".join(p.encode("utf-8", "surrogateescape") + b"\n" for p in paths)
        with subprocess.Popen(
            git_argv(self.repo, "--literal-pathspecs", *args),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        ) as proc:
            assert proc.stdout is not None
            if stdin is not None and proc.stdin is not None:
                # git reads all of standard input before it writes anything
                proc.stdin.write(stdin)
                proc.stdin.close()
            return self._read(proc.stdout, oids)

    def _read(self, log: IO[bytes], oids: set[str] | None) -> Iterator[Change]:
        """The changes of a walk's output ``log`` that touch ``oids`` (all when None),
        oldest first; the blobs they touch are remembered as seen."""
        touched: list[Change] = []  # newest first
        wanted = None if oids is None else {oid.encode("ascii") for oid in oids}
        for commit, old, new, path in _parse(_tokens(log), wanted):
            self._seen.update((old, new))
            touched.append(Change(commit, path, old, new))
        return reversed(touched)


_LOG = (
    "log",
    "--all",
    f"--format={_FORMAT}",
    "-z",
    "--raw",
    "--root",
    "--no-abbrev",
    "--no-renames",
    "--no-textconv",
    "--no-ext-diff",
    "--ignore-submodules",
    "--diff-merges=first-parent",
    "--encoding=UTF-8",
)


class _Prefetch:
    """``git log`` of a whole history running early, into an unnamed temporary file."""

    def __init__(self, repo: Path) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (kept until read, or closed)
        self._proc = subprocess.Popen(
            git_argv(repo, "--literal-pathspecs", *_LOG),
            stdin=subprocess.DEVNULL,
            stdout=self._file,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )

    def output(self) -> IO[bytes]:
        """The walk's output, once git has written all of it (the file, at its start)."""
        self._proc.wait()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._file.close()


_PREFETCHED: dict[str, _Prefetch] = {}


def prefetch(repo: Path) -> None:
    """Start the history walk of ``repo`` now (a secret was found in its history, and
    its provenance will be asked for when the scan ends): git writes it while the rest
    of the history is scanned, instead of after."""
    if str(repo) not in _PREFETCHED:
        _PREFETCHED[str(repo)] = _Prefetch(repo)


def drop_prefetched() -> None:
    """End the early walks nobody asked for (a scan that stopped, or found nothing to
    follow): git is stopped, the files are removed."""
    while _PREFETCHED:
        _PREFETCHED.popitem()[1].close()


def _tokens(stream: object) -> Iterator[bytes]:
    """NUL-separated tokens of a byte stream, read in chunks."""
    rest = b""
    read = stream.read  # type: ignore[attr-defined]
    while chunk := read(1 << 16):
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _parse(
    tokens: Iterator[bytes], wanted: set[bytes] | None = None
) -> Iterator[tuple[Commit, str, str, str]]:
    """(commit, old blob, new blob, path) from ``git log -z --raw`` with ``_FORMAT``:
    a header of seven fields starting with \\x01, then ``:meta`` and path token pairs.
    ``wanted``: only the changes from or to one of these blob ids (a commit and a path
    are decoded only for those: a history's other changes cost a split each)."""
    header: list[bytes] | None = None
    commit: Commit | None = None
    for token in tokens:
        token = token.lstrip(b"\n")
        if token.startswith(b"\x01"):
            header = [token[1:]] + [next(tokens, b"") for _ in range(_FIELDS - 1)]
            commit = None
        elif token.startswith(b":") and header is not None:
            parts = token.split()
            path = next(tokens, b"")
            if len(parts) < 5 or (
                wanted is not None and parts[2] not in wanted and parts[3] not in wanted
            ):
                continue
            if commit is None:
                commit = Commit(*(f.decode("utf-8", "replace") for f in header))
            # object ids are hex; anything else (never seen from git) stays harmless
            old, new = (p.decode("ascii", "replace") for p in parts[2:4])
            yield commit, old, new, path.decode("utf-8", "surrogateescape")
