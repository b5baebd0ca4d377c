"""Files and directories: which bytes exist, where they came from, what was skipped.

Directories are walked recursively, honouring ``.gitignore`` files (and
``.git/info/exclude``) unless told not to; ``.git`` itself is never walked here.
Symlinks are not followed unless asked, with one exception: in a Hugging Face cache
(``<type>s--<name>/snapshots/<rev>/<file>`` linking into ``blobs/``) each file is
scanned through its snapshot link, under its snapshot name, and its blob is not
reported again. Nothing here interprets content; no OS error stops the walk.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from keyscope.sources.interface import Skipped

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


def walk(roots: list[str], options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    """Every file under ``roots`` to scan, or a Skipped with the reason."""
    hf = _HfCache()
    yield from _walk_roots(roots, options, hf)
    for shown, real in hf.blobs:
        if real not in hf.reached:
            yield from _stat_file(shown, options)


def _walk_roots(
    roots: list[str], options: WalkOptions, hf: _HfCache
) -> Iterator[FileEntry | Skipped]:
    for root in roots:
        try:
            st = os.stat(root) if options.follow_symlinks else os.lstat(root)
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
            yield from _walk_dir(Path(root), options, hf)
        elif stat.S_ISREG(st.st_mode):
            yield from _file(root, st.st_size, options)
        else:
            yield Skipped(root, "not a regular file")


def _walk_dir(root: Path, options: WalkOptions, hf: _HfCache) -> Iterator[FileEntry | Skipped]:
    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []
    if options.respect_gitignore:
        git_dir = _git_dir(root)
        exclude = git_dir / "info" / "exclude" if git_dir else None
        if exclude and _is_file(exclude) is True:
            specs.append((_repo_root(root) or root, _load_spec(exclude)))
    stack: list[tuple[Path, list[tuple[Path, pathspec.GitIgnoreSpec]]]] = [(root, specs)]
    seen_dirs: set[tuple[int, int]] = set()  # (device, inode): symlink loops end here
    real_root = os.path.realpath(root)
    while stack:
        folder, inherited = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            yield Skipped(str(folder), _os_reason(exc))
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            if options.follow_symlinks:
                yield Skipped(str(folder), "directory already scanned (symbolic link loop)")
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        local = list(inherited)
        if options.respect_gitignore:
            gi = _is_file(folder / ".gitignore")
            if isinstance(gi, OSError):  # its ignore rules cannot be known: not walked
                yield Skipped(str(folder), _os_reason(gi))
                continue
            if gi:
                local.append((folder, _load_spec(folder / ".gitignore")))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(str(folder), _os_reason(exc))
            continue
        subdirs: list[Path] = []
        for entry in entries:
            if entry.name == ".git":
                continue
            path = Path(entry.path)
            shown = entry.path[2:] if entry.path.startswith("./") else entry.path
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=options.follow_symlinks)
                is_file = entry.is_file(follow_symlinks=options.follow_symlinks)
            except OSError as exc:
                yield Skipped(shown, _os_reason(exc))
                continue
            if _excluded(path, root, options.excludes) or _ignored(path, is_dir, local):
                continue
            if is_link and not is_dir and (snapshot := _hf_snapshot_blob(entry.path)):
                first = hf.reached.setdefault(snapshot, shown)
                if first == shown:
                    yield from _stat_file(shown, options)
                else:
                    yield Skipped(shown, f"same Hugging Face cache blob as {first}, scanned there")
                continue
            if (is_file or (is_link and os.path.isfile(entry.path))) and _hf_blob(entry.path, hf):
                hf.blobs.append((shown, os.path.realpath(entry.path)))
                continue
            if is_link and not options.follow_symlinks:
                if not os.path.exists(entry.path):
                    yield Skipped(shown, "broken symbolic link")
                elif not _inside(os.path.realpath(entry.path), real_root):
                    # A link into the tree is scanned at its target; one out of it is not.
                    yield Skipped(
                        shown,
                        "symbolic link out of the scanned tree, not followed "
                        "(--follow-symlinks follows it)",
                    )
                continue
            if is_dir:
                subdirs.append(path)
                continue
            if is_file:
                try:
                    fst = entry.stat(follow_symlinks=options.follow_symlinks)
                except OSError as exc:
                    yield Skipped(shown, _os_reason(exc))
                    continue
                yield from _file(shown, fst.st_size, options)
            elif is_link:
                yield Skipped(shown, "broken symbolic link")
            else:
                yield Skipped(shown, "not a regular file (device, socket or pipe)")
        stack.extend((d, local) for d in reversed(subdirs))


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


def _stat_file(path: str, options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        yield Skipped(path, _os_reason(exc))
        return
    yield from _file(path, size, options)


def _file(path: str, size: int, options: WalkOptions) -> Iterator[FileEntry | Skipped]:
    if size > options.max_file_size:
        yield Skipped(
            path,
            f"larger than --max-file-size ({size} > {options.max_file_size} bytes)",
            oversize=True,
        )
    else:
        yield FileEntry(path, size)


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


def _excluded(path: Path, root: Path, patterns: tuple[str, ...]) -> bool:
    if not patterns:
        return False
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
    return any(
        fnmatch.fnmatch(rel, p)
        or fnmatch.fnmatch(path.name, p)
        or rel.startswith(p.rstrip("/") + "/")
        for p in patterns
    )


def _ignored(path: Path, is_dir: bool, specs: list[tuple[Path, pathspec.GitIgnoreSpec]]) -> bool:
    ignored = False
    for base, spec in specs:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        result = spec.check_file(rel + ("/" if is_dir else ""))
        if result.include is not None:
            ignored = bool(result.include)
    return ignored


def _load_spec(path: Path) -> pathspec.GitIgnoreSpec:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    return pathspec.GitIgnoreSpec.from_lines(lines)


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


def _is_file(path: Path) -> bool | OSError:
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
