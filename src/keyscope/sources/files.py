"""Files and directories: which bytes exist, where they came from, what was skipped.

Directories are walked recursively, honouring ``.gitignore`` files (and
``.git/info/exclude``) unless told not to; ``.git`` itself is never walked here.
Symlinks are not followed unless asked, with one exception: in a Hugging Face cache
(``<type>s--<name>/snapshots/<rev>/<file>`` linking into ``blobs/``) each file is
scanned through its snapshot link, under its snapshot name, and its blob is not
reported again. Nothing here interprets content; no OS error stops the walk.

The walk uses plain strings and ``os.scandir``: each ignore file is compiled once and
asked about names relative to its own folder. As a source (``FilesSource``), with one
job the walk runs in the scanning process; with more, the parent only lists folders
(:func:`plan`) and each worker decides the files of the folders it is given
(:class:`DirJob`), reads and scans them, so a files scan scales with cores.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from keyscope.sources.interface import (
    WAIT,
    Batch,
    Blob,
    Deferred,
    Skipped,
    Source,
    SourceOptions,
    Unit,
    WorkerContext,
    merged,
)
from keyscope.sources.oversize import (
    MAP_BYTES,
    OVERSIZE_BATCH,
    OversizeUnit,
    is_archive,
    mapped,
    models_only,
)
from keyscope.sources.zipparts import ALONE_BYTES, ZipPieces, zip_cuts

if TYPE_CHECKING:
    import pathspec  # loaded when the first ignore file is compiled

DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024
# A repository folder of a Hugging Face cache (huggingface_hub's layout:
# models--org--name/ with blobs/, snapshots/<rev>/ and refs/).
HF_REPO_FOLDER = re.compile(r"(?:models|datasets|spaces|kernels)--.+")


@dataclass(frozen=True)
class WalkOptions:
    respect_gitignore: bool = True
    excludes: tuple[str, ...] = ()
    follow_symlinks: bool = False
    max_file_size: int = DEFAULT_MAX_FILE_SIZE


@dataclass(frozen=True)
class FileEntry:
    path: str  # as given or joined from the walk root: what reports show
    size: int


@dataclass
class _HfCache:
    """Hugging Face cache files met during one walk: blobs reached through a snapshot
    link (real path → snapshot name) and blobs met in ``blobs/``, which wait for the
    end of the walk (a blob no snapshot reached is an orphan, scanned by its own name)."""

    reached: dict[str, str] = field(default_factory=dict)
    blobs: list[tuple[str, str]] = field(default_factory=list)  # (shown, real path)
    roots: dict[str, bool] = field(default_factory=dict)  # folder → is a cache root


@dataclass(frozen=True, eq=False)
class IgnoreFile:
    """The lines of one ``.gitignore`` (or ``.git/info/exclude``), compiled once per
    process under ``key`` (unique within a scan)."""

    key: int
    lines: tuple[str, ...]


SpecOf = Callable[[IgnoreFile], "pathspec.GitIgnoreSpec"]
# Up to this many lines, an ignore file is matched by pathspec's pure-Python backend:
# it compiles in a fraction of a millisecond, where a Hyperscan database (pathspec's
# default when Hyperscan is installed) takes about 10 ms, for every .gitignore in every
# worker; a long file keeps the default, which matches a path in one pass.
SIMPLE_IGNORE_LINES = 64


def compile_ignore(ignore: IgnoreFile) -> pathspec.GitIgnoreSpec:
    """The compiled rules of one ignore file (same answers with either backend)."""
    import pathspec  # a tree without ignore files never loads it

    if len(ignore.lines) <= SIMPLE_IGNORE_LINES:
        return pathspec.GitIgnoreSpec.from_lines(ignore.lines, backend="simple")
    return pathspec.GitIgnoreSpec.from_lines(ignore.lines)


@dataclass(frozen=True)
class DirJob:
    """The entries of one directory other than the subdirectories to walk, as listed
    (name, type bits or the error that stopped them being known): enough to decide, in
    a worker, which files to read, without listing the directory again."""

    prefix: str  # the directory's path as entries are joined to it ("dir/", "./")
    rel: str  # the directory relative to the walk root, "" or ending in "/"
    rules: tuple[tuple[IgnoreFile, str], ...]  # ignore files in force, and the
    # directory relative to each one's base ("" or ending in "/")
    real_root: str  # the walk root, symbolic links resolved
    entries: list[tuple[str, int | str]] = field(default_factory=list)

    def classify(self, options: WalkOptions, spec_of: SpecOf) -> Iterator[FileEntry | Skipped]:
        """The files to read and the entries skipped, in listing order."""
        for name, kind in self.entries:
            item = _classify(self, name, kind, options, spec_of, None)
            if item is not None and not isinstance(item, str):
                yield item


_LINK, _DIR, _FILE = 1, 2, 4  # type bits of a listed entry


def walk(roots: list[str], options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    """Every file under ``roots`` to scan, or a Skipped with the reason."""
    for item in _Walker(options, split=False).walk(roots):
        assert not isinstance(item, DirJob)
        yield item


def plan(
    roots: list[str], options: WalkOptions, size: int, small: int = 1
) -> Iterator[list[FileEntry | Skipped | DirJob]]:
    """The walk of ``roots`` cut into pieces of about ``size`` entries, in walk order:
    directories are listed here, their files are classified (ignore rules, symbolic
    links, sizes) where the piece is read. Folders of a Hugging Face cache are decided
    here whole, since a blob reached twice is read once. The first ``small`` pieces are
    smaller (``FIRST_PIECE`` entries; then doubling up to ``size``), and a directory's
    entries are split between pieces, so that a small tree or one large folder still
    gives every worker some of the work, and a tree of a hundred files costly to read
    (dense with credentials) is not left to one worker's last large piece."""
    piece: list[FileEntry | Skipped | DirJob] = []
    weight = 0
    cut = min(size, FIRST_PIECE)
    for item in _Walker(options, split=True).walk(roots):
        rest = [item]
        while rest:
            part = rest.pop()
            if isinstance(part, DirJob) and weight + len(part.entries) > cut:
                room = max(cut - weight, 1)
                rest.append(replace(part, entries=part.entries[room:]))
                part = replace(part, entries=part.entries[:room])
            piece.append(part)
            weight += len(part.entries) if isinstance(part, DirJob) else 1
            if weight >= cut:
                yield piece
                small -= 1
                piece, weight = [], 0
                cut = cut if small > 0 else min(size, 2 * cut)
    if piece:
        yield piece


class _Walker:
    """One walk over the roots. ``split``: leave the files of each directory to a
    :class:`DirJob` instead of deciding them here."""

    def __init__(self, options: WalkOptions, split: bool) -> None:
        self.options = options
        self.split = split
        self.hf = _HfCache()
        self._specs: dict[int, pathspec.GitIgnoreSpec] = {}

    def spec(self, ignore: IgnoreFile) -> pathspec.GitIgnoreSpec:
        return self._specs[ignore.key]

    def _load(self, path: str) -> IgnoreFile:
        ignore = IgnoreFile(len(self._specs), tuple(_read_lines(path)))
        self._specs[ignore.key] = compile_ignore(ignore)
        return ignore

    def walk(self, roots: list[str]) -> Iterator[FileEntry | Skipped | DirJob]:
        for root in roots:
            try:
                st = os.stat(root) if self.options.follow_symlinks else os.lstat(root)
            except OSError as exc:
                broken = os.path.islink(root)
                yield Skipped(root, "broken symbolic link" if broken else _os_reason(exc))
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    st = os.stat(root)  # a symlink named on the command line is followed
                except OSError:
                    yield Skipped(root, "broken symbolic link")
                    continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk_dir(root)
            elif stat.S_ISREG(st.st_mode):
                yield _file(root, st.st_size, self.options)
            else:
                yield Skipped(root, "not a regular file")
        for shown, real in self.hf.blobs:
            if real not in self.hf.reached:
                yield _stat_file(shown, self.options)

    def _root_rules(self, top: str) -> tuple[tuple[IgnoreFile, tuple[str, int]], ...]:
        """``.git/info/exclude`` of the repository holding ``top``, if it applies."""
        root = Path(top)
        git_dir = _git_dir(root)
        exclude = git_dir / "info" / "exclude" if git_dir else None
        if not exclude or _is_file(str(exclude)) is not True:
            return ()
        try:  # patterns are matched against paths relative to the repository
            base = root.relative_to(_repo_root(root) or root).as_posix()
        except ValueError:  # (as given: a relative root never matches a resolved one)
            return ()
        return ((self._load(str(exclude)), ("" if base == "." else base, 0)),)

    def _walk_dir(self, root: str) -> Iterator[FileEntry | Skipped | DirJob]:
        options = self.options
        top = str(Path(root))
        rules = self._root_rules(top) if options.respect_gitignore else ()
        # (folder, relative to the walk root, ignore files with how to place a path in each)
        stack: list[tuple[str, str, tuple[tuple[IgnoreFile, tuple[str, int]], ...]]] = [
            (top, "", rules)
        ]
        seen_dirs: set[tuple[int, int]] = set()  # (device, inode): symlink loops end here
        real_root = os.path.realpath(top)
        while stack:
            folder, rel, inherited = stack.pop()
            try:
                st = os.stat(folder)
            except OSError as exc:
                yield Skipped(folder, _os_reason(exc))
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:
                if options.follow_symlinks:
                    yield Skipped(folder, "directory already scanned (symbolic link loop)")
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            local = inherited
            if options.respect_gitignore:
                gitignore = os.path.join(folder, ".gitignore")
                gi = _is_file(gitignore)
                if isinstance(gi, OSError):  # its ignore rules cannot be known: not walked
                    yield Skipped(folder, _os_reason(gi))
                    continue
                if gi:
                    local = (*inherited, (self._load(gitignore), ("", len(rel))))
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                yield Skipped(folder, _os_reason(exc))
                continue
            job = DirJob(
                os.path.join(folder, ""),
                rel,
                tuple((ignore, _placed(base, rel)) for ignore, base in local),
                real_root,
            )
            hf = self.hf if _hf_sensitive(folder, self.hf) else None
            subdirs: list[tuple[str, str]] = []
            for entry in entries:
                name = entry.name
                if name == ".git":
                    continue
                kind: int | str
                try:
                    kind = (
                        (_LINK if entry.is_symlink() else 0)
                        | (_DIR if entry.is_dir(follow_symlinks=options.follow_symlinks) else 0)
                        | (_FILE if entry.is_file(follow_symlinks=options.follow_symlinks) else 0)
                    )
                except OSError as exc:
                    kind = _os_reason(exc)
                if self.split and hf is None and (isinstance(kind, str) or not kind & _DIR):
                    job.entries.append((name, kind))
                    continue
                item = _classify(job, name, kind, options, self.spec, hf)
                if isinstance(item, str):
                    subdirs.append((item, f"{rel}{name}/"))
                elif item is not None:
                    yield item
            if job.entries:
                yield job
            stack.extend((d, r, local) for d, r in reversed(subdirs))


def _placed(base: tuple[str, int], rel: str) -> str:
    """A directory ``rel`` (relative to the walk root, "" or ending in "/") as seen from
    an ignore file's base: ``base`` is (prefix, how much of ``rel`` to cut)."""
    head, cut = base
    tail = rel[cut:]
    if head:
        return f"{head}/{tail}"
    return tail


def _hf_sensitive(folder: str, hf: _HfCache) -> bool:
    """Could an entry of ``folder`` be part of a Hugging Face cache: a link under a
    cache repository's ``snapshots/``, or a file in a ``blobs/`` that ``_hf_blob``
    counts? Only then do the cache checks run (they need the whole walk's state)."""
    parts = os.path.abspath(folder).split(os.sep)
    return any(
        part == "snapshots" and HF_REPO_FOLDER.fullmatch(parts[i - 1])
        for i, part in enumerate(parts)
        if i
    ) or _hf_blob(os.path.join(folder, "-"), hf)


def _classify(
    job: DirJob,
    name: str,
    kind: int | str,
    options: WalkOptions,
    spec_of: SpecOf,
    hf: _HfCache | None,
) -> FileEntry | Skipped | str | None:
    """One listed entry: a file to read, a Skipped, a directory to walk (its path), or
    None (ignored, excluded, a link into the tree, a cache blob decided later)."""
    path = job.prefix + name
    shown = path[2:] if path.startswith("./") else path
    if isinstance(kind, str):
        return Skipped(shown, kind)
    is_link, is_dir, is_file = bool(kind & _LINK), bool(kind & _DIR), bool(kind & _FILE)
    if _excluded(job.rel + name, name, options.excludes) or _ignored(job, name, is_dir, spec_of):
        return None
    if hf is not None:
        if is_link and not is_dir and (snapshot := _hf_snapshot_blob(path)):
            first = hf.reached.setdefault(snapshot, shown)
            if first == shown:
                return _stat_file(shown, options)
            return Skipped(shown, f"same Hugging Face cache blob as {first}, scanned there")
        if (is_file or (is_link and os.path.isfile(path))) and _hf_blob(path, hf):
            hf.blobs.append((shown, os.path.realpath(path)))
            return None
    if is_link and not options.follow_symlinks:
        if not os.path.exists(path):
            return Skipped(shown, "broken symbolic link")
        if not _inside(os.path.realpath(path), job.real_root):
            # A link into the tree is scanned at its target; one out of it is not.
            return Skipped(
                shown,
                "symbolic link out of the scanned tree, not followed "
                "(--follow-symlinks follows it)",
            )
        return None
    if is_dir:
        return shown
    if is_file:
        try:
            fst = os.stat(path) if options.follow_symlinks else os.lstat(path)
        except OSError as exc:
            return Skipped(shown, _os_reason(exc))
        return _file(shown, fst.st_size, options)
    if is_link:
        return Skipped(shown, "broken symbolic link")
    return Skipped(shown, "not a regular file (device, socket or pipe)")


def _hf_snapshot_blob(path: str) -> str | None:
    """For ``…/<type>s--<name>/snapshots/<rev>/<file>`` linking into the repository's
    ``blobs/`` (or the cache root's shared ``blobs/``): the blob's real path."""
    parts = os.path.abspath(path).split(os.sep)
    try:
        i = len(parts) - 1 - parts[::-1].index("snapshots")
    except ValueError:
        return None
    if i < 1 or len(parts) - i < 3 or not HF_REPO_FOLDER.fullmatch(parts[i - 1]):
        return None
    repo = os.path.realpath(os.sep.join(parts[:i]))
    real = os.path.realpath(path)
    blobs = (os.path.join(repo, "blobs"), os.path.join(os.path.dirname(repo), "blobs"))
    if not any(_inside(real, b) for b in blobs) or not os.path.isfile(real):
        return None
    return real


def _hf_blob(path: str, hf: _HfCache) -> bool:
    """A file in a cache repository's ``blobs/`` or in the cache root's shared ``blobs/``."""
    parts = os.path.abspath(path).split(os.sep)
    for j in range(len(parts) - 2, 0, -1):
        if parts[j] != "blobs":
            continue
        if HF_REPO_FOLDER.fullmatch(parts[j - 1]):
            return True
        parent = os.sep.join(parts[:j])
        if parent not in hf.roots:
            try:
                hf.roots[parent] = any(HF_REPO_FOLDER.fullmatch(n) for n in os.listdir(parent))
            except OSError:
                hf.roots[parent] = False
        return hf.roots[parent]
    return False


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _stat_file(path: str, options: WalkOptions) -> FileEntry | Skipped:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return Skipped(path, _os_reason(exc))
    return _file(path, size, options)


def _file(path: str, size: int, options: WalkOptions) -> FileEntry | Skipped:
    if size > options.max_file_size:
        return Skipped(
            path,
            f"larger than --max-file-size ({size} > {options.max_file_size} bytes)",
            oversize=True,
        )
    return FileEntry(path, size)


def read_file(path: str, max_size: int) -> bytes | Skipped:
    """The file's bytes, or why they could not be read."""
    try:
        with open(path, "rb", buffering=0) as f:
            # Ask for the file's own size (plus one byte, to see growth past the limit):
            # read(max_size + 1) would allocate the whole limit for every small file.
            size = os.fstat(f.fileno()).st_size
            data = f.read(min(size, max_size) + 1)
            if len(data) > size and len(data) <= max_size:  # grew while we read: take the rest
                data += f.read(max_size + 1 - len(data))
    except OSError as exc:
        return Skipped(path, _os_reason(exc))
    if len(data) > max_size:
        return Skipped(path, f"larger than --max-file-size (> {max_size} bytes)")
    return data


def read_blobs(path: str, size: int, max_size: int) -> Iterator[Blob | Skipped]:
    """The file as a blob: bytes, or for an archive from ``MAP_BYTES`` on a read-only
    memory map open while the consumer looks at it (unpacked from it as a stream; the
    worker reads the map whole when no expander claims the file after all)."""
    if MAP_BYTES <= size <= max_size and is_archive(path):
        for blob in mapped(path):
            yield blob
            return
    data = read_file(path, max_size)
    yield data if isinstance(data, Skipped) else Blob(path=path, data=data)


def _excluded(rel: str, name: str, patterns: tuple[str, ...]) -> bool:
    """``rel``: the path relative to the walk root."""
    if not patterns:
        return False
    return any(
        fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) or rel.startswith(p.rstrip("/") + "/")
        for p in patterns
    )


def _ignored(job: DirJob, name: str, is_dir: bool, spec_of: SpecOf) -> bool:
    """The last ignore file with a rule for the entry decides (nearest folder last)."""
    suffix = "/" if is_dir else ""
    for ignore, placed in reversed(job.rules):
        result = spec_of(ignore).check_file(placed + name + suffix)
        if result.include is not None:
            return bool(result.include)
    return False


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def _repo_root(start: Path) -> Path | None:
    for folder in (start.resolve(), *start.resolve().parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def _git_dir(start: Path) -> Path | None:
    root = _repo_root(start)
    if root is None:
        return None
    git = root / ".git"
    return git if os.path.isdir(git) else None


def _is_file(path: str) -> bool | OSError:
    """Whether ``path`` is a regular file; the error when that cannot be known
    (Path.is_file raises on EACCES and ENAMETOOLONG)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        return exc


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


# --------------------------------------------------------------------- as a source

BATCH_FILES = 256  # files per unit when the walk runs in the scanning process
BATCH_BYTES = 16 * 1024 * 1024
UNIT_ENTRIES = 512  # listed entries per unit when workers take directories
FIRST_PIECE = 8  # entries in the first unit; each next one twice as many, to UNIT_ENTRIES


def walk_options(options: SourceOptions) -> WalkOptions:
    return WalkOptions(
        respect_gitignore=options.respect_gitignore,
        excludes=options.excludes,
        follow_symlinks=options.follow_symlinks,
        max_file_size=options.max_file_size,
    )


def batches(
    entries: Iterator[FileEntry | Skipped],
    skipped: list[Skipped],
    oversize: list[str] | None = None,
) -> Iterator[list[str]]:
    """Paths of at most ``BATCH_FILES`` files or ``BATCH_BYTES``; skipped entries go to
    ``skipped`` (and the paths over the size limit to ``oversize``) as they come."""
    batch: list[str] = []
    size = 0
    for entry in entries:
        if isinstance(entry, Skipped):
            skipped.append(entry)
            if entry.oversize and oversize is not None:
                oversize.append(entry.path)
            continue
        batch.append(entry.path)
        size += entry.size
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass(frozen=True)
class PathsUnit:
    """Files already decided on: read each (bounded by the size limit); ``walked``:
    judged as model files by another unit (``Blob.walked``)."""

    paths: list[str]
    walked: bool = False

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        for path in self.paths:
            try:
                size = os.stat(path).st_size
            except OSError:
                size = 0  # read_file says why
            for blob in read_blobs(path, size, ctx.max_file_size):
                yield replace(blob, walked=True) if self.walked and isinstance(blob, Blob) else blob


@dataclass(frozen=True)
class DirUnit:
    """A piece of the walk (see :func:`plan`): directories whose files are decided
    here, in the worker, then read; files over the size limit are judged as models
    where they are met (``models``)."""

    items: list[FileEntry | Skipped | DirJob]
    options: WalkOptions
    models: bool
    # a large zip is handed back, to be read in this many pieces, and any other large
    # file to be read by a worker of its own (0: never)
    parts: int = 0

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped | Deferred]:
        compiled: dict[int, pathspec.GitIgnoreSpec] = ctx.kept("files.ignore", dict)

        def spec_of(ignore: IgnoreFile) -> pathspec.GitIgnoreSpec:
            spec = compiled.get(ignore.key)
            if spec is None:
                spec = compiled[ignore.key] = compile_ignore(ignore)
            return spec

        for item in self.items:
            entries = item.classify(self.options, spec_of) if isinstance(item, DirJob) else (item,)
            for entry in entries:
                if isinstance(entry, Skipped):
                    yield entry
                    if entry.oversize and self.models:
                        yield from models_only(entry.path)
                    continue
                cuts = zip_cuts(entry.path, entry.size, self.parts) if self.parts else None
                if cuts is not None:
                    yield Deferred(entry.path, cuts)
                    continue
                if self.parts and entry.size >= ALONE_BYTES:  # a worker of its own reads it
                    yield Deferred(entry.path)
                    continue
                yield from read_blobs(entry.path, entry.size, ctx.max_file_size)


class FilesSource(Source):
    """Files and directories: every root no earlier source claimed.

    With one job the walk runs here and units are lists of files; with more, workers
    take directories (:func:`plan`), and what they give back is reported in walk order;
    a large zip they meet comes back to be read in pieces by several workers
    (``zipparts``), its results put back where it was met."""

    name = "files"

    def __init__(self, options: SourceOptions) -> None:
        super().__init__(options)
        self._roots: list[str] = []
        self._issued: deque[DirUnit] = deque()
        self._done: dict[int, Batch] = {}
        self._pieces = ZipPieces(PathsUnit, OversizeUnit if options.models else None)

    def claim(self, root: str) -> bool:
        self._roots.append(root)
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        options = walk_options(self.options)
        if jobs > 1:
            # members of a large zip are read in parallel when they are unpacked at all
            unpacked = self.options.secrets and self.options.unpack_depth > 0
            parts = 2 * jobs if unpacked else 0
            for items in plan(self._roots, options, UNIT_ENTRIES, small=2 * jobs):
                unit = DirUnit(items, options, self.options.models, parts)
                self._issued.append(unit)
                yield unit
                while self._pieces.ready:
                    yield self._pieces.ready.popleft()
            while self._issued:  # pieces still to hand out, or to wait for
                yield self._pieces.ready.popleft() if self._pieces.ready else WAIT
            return
        oversize: list[str] = []
        for batch in batches(walk(self._roots, options), skipped, oversize):
            yield PathsUnit(batch)
        if self.options.models:
            for start in range(0, len(oversize), OVERSIZE_BATCH):
                yield OversizeUnit(oversize[start : start + OVERSIZE_BATCH])

    def absorb(self, unit: Unit, batch: Batch) -> Batch:
        if self._pieces.owns(unit):
            self._pieces.absorb(unit, batch)
        elif isinstance(unit, DirUnit):
            self._done[id(unit)] = batch
            self._pieces.hand_back(unit, batch)
        else:
            return batch
        # Workers finish out of order: hold each piece until the ones before it came
        # (and the pieces of the zips it handed back).
        ready: list[Batch] = []
        while self._issued and id(first := self._issued[0]) in self._done:
            if not self._pieces.done(first):
                break
            self._issued.popleft()
            ready.append(self._pieces.spliced(first, self._done.pop(id(first))))
        return merged(ready)
