"""Each finding's owners, from three sources, in this order: the commit's author and
committer (history findings), the repository's CODEOWNERS for the path, and the
config's ``[owners]`` map (account, repository, path).

CODEOWNERS is read as data from the scanned repository: for a history finding, the
file in HEAD's tree (``git ls-tree`` / ``cat-file``: nothing checked out, nothing
run); for a file on disk, the file in the work tree of the repository around it (a
regular file, never a link). The first of ``.github/``, the top level, ``docs/`` and
``.gitlab/`` is the one used; a file over 3 MiB is ignored, as GitHub does. For a
remote URL it is read from HEAD of the scan's mirror in the cache (``mirrors``, the
folder ``sources/remote.py`` keeps them in), as data, like any history.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from keyscope.model import Finding, Location, Owner, RawFinding, ScanResult
from keyscope.owners.codeowners import LOCATIONS, MAX_BYTES, CodeOwners, parse_codeowners
from keyscope.owners.config import OwnersMap
from keyscope.owners.people import merged, owner_from_text, person
from keyscope.sources.git import GitError, find_repository, git
from keyscope.sources.remote import is_remote, mirror_path, remote_label


@dataclass(frozen=True)
class Tree:
    """A repository (or a plain folder) as the owners see it."""

    top: str  # the folder paths are relative to ("" for a remote repository)
    codeowners: CodeOwners | None
    names: tuple[str, ...]  # what [owners.repositories] patterns are matched against


class OwnerResolver:
    """Answers "who owns this?" for one scan's findings; reads each repository's
    CODEOWNERS once."""

    def __init__(
        self, owners_map: OwnersMap, roots: Sequence[str], mirrors: Path | None = None
    ) -> None:
        self.map = owners_map
        self.mirrors = mirrors  # where remote repositories' mirrors are (cache/repos)
        # longest first: a location belongs to the most specific root
        self.roots = sorted({r for r in roots if r != "-"}, key=len, reverse=True)
        self._trees: dict[str, Tree] = {}
        self._tops: dict[tuple[str, str], Path] = {}  # (folder, root) → its tree's top
        self._paths: dict[tuple[str, str], tuple[Owner, ...]] = {}
        self._places: dict[tuple[str, bool], tuple[Tree | None, str]] = {}

    def finding(self, f: Finding) -> tuple[Owner, ...]:
        """Every owner of a finding: per location, then by its account."""
        found: list[Owner] = []
        for loc in f.locations:
            found.extend(self.location(loc))
        found.extend(self.map.for_account(f.explanation.access.account))
        return merged(found)

    def raw(self, raw: RawFinding) -> tuple[Owner, ...]:
        """The owners of one location of a credential, as a streaming format sees it."""
        account = raw.explanation.access.account
        return merged([*self.location(raw.location), *self.map.for_account(account)])

    def location(self, loc: Location) -> list[Owner]:
        found: list[Owner] = []
        g = loc.git
        if g is not None and g.commit is not None:
            commit = g.commit[:10]
            for who in (
                person(g.author, g.email, f"author of {commit}"),
                person(g.committer, g.committer_email, f"committer of {commit}"),
            ):
                if who is not None:
                    found.append(who)
        tree, relative = self._place(loc)
        if tree is not None:
            found.extend(self._by_path(tree, relative))
        return found

    def _by_path(self, tree: Tree, relative: str) -> tuple[Owner, ...]:
        key = (tree.top, relative)
        cached = self._paths.get(key)
        if cached is None:
            out: list[Owner] = []
            if tree.codeowners is not None:
                for m in tree.codeowners.match(relative):
                    via = f"{tree.codeowners.file}:{m.line} {m.pattern}"
                    if m.section:
                        via += f" [{m.section}]"
                    out.extend(o for o in (owner_from_text(t, via) for t in m.owners) if o)
            out.extend(self.map.for_path(relative))
            out.extend(self.map.for_repository(tree.names))
            cached = self._paths[key] = tuple(out)
        return cached

    def _place(self, loc: Location) -> tuple[Tree | None, str]:
        """The tree a location is in, and its path there (once per path: a file holds
        many findings)."""
        key = (loc.path, loc.git is not None)
        placed = self._places.get(key)
        if placed is None:
            placed = self._places[key] = self._find_place(loc)
        return placed

    def _find_place(self, loc: Location) -> tuple[Tree | None, str]:
        root = next((r for r in self.roots if _under(loc.path, _shown(r))), None)
        if root is None:
            return None, ""
        shown = _shown(root)
        inside = loc.path[len(shown) :].lstrip("/") if shown not in (".", "") else loc.path
        if loc.git is not None:  # read from history: the root is the repository
            return self._history_tree(root), inside
        return self._disk_tree(loc.path, root)

    def _history_tree(self, root: str) -> Tree:
        key = "git:" + root
        tree = self._trees.get(key)
        if tree is None:
            repo = self._mirror(root) if is_remote(root) else _repository(Path(root))
            names = _names(root, repo)
            tree = Tree(root, _codeowners_at_head(repo) if repo else None, names)
            self._trees[key] = tree
        return tree

    def _mirror(self, url: str) -> Path | None:
        """The scan's bare mirror of a remote repository, when the cache has it."""
        if self.mirrors is None:
            return None
        path = mirror_path(url, self.mirrors)
        return path if (path / "HEAD").is_file() else None

    def _disk_tree(self, path: str, root: str) -> tuple[Tree, str]:
        folder = os.path.dirname(path)
        top = self._tops.get((folder, root))
        if top is None:
            top = self._tops[folder, root] = _work_tree(Path(folder), Path(root))
        key = "disk:" + str(top)
        tree = self._trees.get(key)
        if tree is None:
            repo = top if (top / ".git").exists() else None
            tree = Tree(str(top), _codeowners_on_disk(top), _names(str(top), repo))
            self._trees[key] = tree
        try:
            relative = Path(os.path.abspath(path)).relative_to(top).as_posix()
        except ValueError:
            relative = Path(path).name
        return tree, relative


def assign_owners(result: ScanResult, resolver: OwnerResolver) -> None:
    """Give every finding of ``result`` its owners."""
    for f in result.findings:
        f.owners = resolver.finding(f)


def with_owners(raw: RawFinding, resolver: OwnerResolver) -> RawFinding:
    return replace(raw, owners=resolver.raw(raw))


def _shown(root: str) -> str:
    """How reports name the paths under ``root`` (a remote URL: ``host/org/repo``)."""
    return remote_label(root) if is_remote(root) else root


def _under(path: str, root: str) -> bool:
    if root in (".", ""):
        return not os.path.isabs(path)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _repository(root: Path) -> Path | None:
    try:
        return find_repository(root)
    except GitError:
        return None


def _work_tree(folder: Path, root: Path) -> Path:
    """The top level of the repository holding ``folder``; else the scanned root (a
    folder) or the file's folder."""
    here = Path(os.path.abspath(folder))
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    base = Path(os.path.abspath(root))
    return base if base.is_dir() else here


def _names(shown: str, repo: Path | None) -> tuple[str, ...]:
    """A repository's names for [owners.repositories]: as scanned, its folder, its
    origin URL and that URL's last two steps (``acme/web``)."""
    names = [shown.rstrip("/"), Path(os.path.abspath(shown)).name]
    url = shown if is_remote(shown) else None
    if repo is not None:
        try:
            url = git(repo, "config", "--get", "remote.origin.url", check=False).decode(
                "utf-8", "replace"
            ).strip() or None
        except GitError:
            url = None
    if url:
        bare = url.removesuffix("/").removesuffix(".git")
        tail = bare.replace(":", "/").split("/")[-2:]
        names += [url, bare, "/".join(tail)]
    return tuple(dict.fromkeys(n for n in names if n))


def _codeowners_at_head(repo: Path) -> CodeOwners | None:
    try:
        listing = git(repo, "ls-tree", "-z", "-l", "HEAD", "--", *LOCATIONS, check=False)
    except GitError:
        return None
    entries: dict[str, tuple[str, int]] = {}
    for entry in listing.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) == 4 and parts[0] in (b"100644", b"100755") and parts[1] == b"blob":
            size = int(parts[3]) if parts[3].isdigit() else MAX_BYTES + 1
            entries[name.decode("utf-8", "replace")] = (parts[2].decode(), size)
    for where in LOCATIONS:
        if where in entries:
            oid, size = entries[where]
            if size > MAX_BYTES:
                return None
            try:
                data = git(repo, "cat-file", "blob", oid)
            except GitError:
                return None
            return parse_codeowners(data.decode("utf-8", "replace"), where)
    return None


def _codeowners_on_disk(top: Path) -> CodeOwners | None:
    for where in LOCATIONS:
        path = top / where
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            return None  # a link or a huge file is not read (nor is a later one)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError:
            return None
        return parse_codeowners(data.decode("utf-8", "replace"), where)
    return None
