"""Provenance of a matched blob: which commits introduced it, at which paths, who,
when, whether it was removed, and whether it is still at HEAD.

Computed only for blobs that matched, so a history with no findings costs nothing
here.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from keyscope.model import GitProvenance
from keyscope.sources.git import git

_FORMAT = "%x01%H%x00%an%x00%ae%x00%aI%x00%cn%x00%s"


@dataclass(frozen=True)
class Commit:
    id: str
    author: str
    email: str
    date: str
    committer: str
    subject: str


@dataclass
class BlobHistory:
    """Per path: the commit that first introduced the blob there, and the commit (if
    any) that later removed it."""

    introduced: dict[str, Commit] = field(default_factory=dict)
    removed: dict[str, Commit] = field(default_factory=dict)


class ProvenanceIndex:
    """Answers provenance questions for one repository, caching per blob."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._histories: dict[str, BlobHistory] = {}
        self._wanted: set[str] = set()
        self._head: dict[str, str] | None = None

    def head_tree(self) -> dict[str, str]:
        """path → blob id at HEAD (empty for a repository without commits)."""
        if self._head is None:
            out = git(self.repo, "ls-tree", "-r", "-z", "HEAD", check=False)
            head: dict[str, str] = {}
            for entry in out.split(b"\0"):
                meta, _, path = entry.partition(b"\t")
                parts = meta.split()
                if len(parts) == 3 and parts[1] == b"blob":
                    head[path.decode("utf-8", "surrogateescape")] = parts[2].decode()
            self._head = head
        return self._head

    def want(self, oid: str) -> None:
        """Ask for ``oid``'s history; every wanted blob is answered by one pass."""
        if oid not in self._histories:
            self._wanted.add(oid)

    def history(self, oid: str) -> BlobHistory:
        if oid not in self._histories:
            self._wanted.add(oid)
            self._histories.update(self._compute(self._wanted))
            self._wanted.clear()
        return self._histories[oid]

    def provenance(self, oid: str, fallback_path: str) -> list[tuple[str, GitProvenance]]:
        """One (path, provenance) per path the blob was introduced at, oldest first."""
        h = self.history(oid)
        head = self.head_tree()
        if not h.introduced:
            at_head = head.get(fallback_path) == oid
            return [(fallback_path, GitProvenance(blob=oid, commit=None, present_at_head=at_head))]
        out: list[tuple[str, GitProvenance]] = []
        for path, c in sorted(h.introduced.items(), key=lambda kv: kv[1].date):
            removed = h.removed.get(path)
            at_head = head.get(path) == oid
            last = None
            if removed is not None and not at_head:
                last = self._parent(removed.id)
            out.append(
                (
                    path,
                    GitProvenance(
                        blob=oid,
                        commit=c.id,
                        author=c.author,
                        email=c.email,
                        date=c.date,
                        committer=c.committer,
                        message=c.subject,
                        removed_in=removed.id if removed and not at_head else None,
                        removed_date=removed.date if removed and not at_head else None,
                        removed_by=removed.author if removed and not at_head else None,
                        last_present=last,
                        present_at_head=at_head,
                        removed_from_head=not at_head,
                    ),
                )
            )
        return out

    def _parent(self, commit: str) -> str | None:
        out = git(self.repo, "rev-parse", "--verify", "-q", f"{commit}^", check=False).strip()
        return out.decode() or None

    def _compute(self, oids: set[str]) -> dict[str, BlobHistory]:
        """One streamed walk of the whole history for all ``oids`` (with a single blob,
        git's own --find-object filter does the matching). Only the few lines that
        touch a wanted blob are kept, so memory stays flat however long the history."""
        args = [
            "git",
            "-C",
            str(self.repo),
            "log",
            "--all",
            f"--format={_FORMAT}",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--diff-merges=first-parent",
        ]
        if len(oids) == 1:
            args.append(f"--find-object={next(iter(oids))}")
        touched: list[tuple[Commit, str, str, str]] = []  # newest first
        fields: list[str] = []
        with subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C"},
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(b"\x01"):
                    fields = line[1:].rstrip(b"\n").decode("utf-8", "replace").split("\0")
                    continue
                if not line.startswith(b":") or len(fields) < 6:
                    continue
                meta, _, path_b = line.rstrip(b"\n").partition(b"\t")
                parts = meta.split()
                if len(parts) < 5:
                    continue
                old, new = parts[2].decode(), parts[3].decode()
                if old in oids or new in oids:
                    path = path_b.decode("utf-8", "surrogateescape")
                    touched.append((Commit(*fields[:6]), old, new, path))
        histories = {oid: BlobHistory() for oid in oids}
        for commit, old, new, path in reversed(touched):  # oldest first
            if new in histories:
                h = histories[new]
                if path not in h.introduced:
                    h.introduced[path] = commit
                    h.removed.pop(path, None)
            if old in histories and old != new:
                histories[old].removed[path] = commit
        return histories
