"""Container images given as scan roots: an OCI image layout directory (``oci-layout``,
``index.json``, ``blobs/…``), or an image tarball (``docker save``, ``podman save``,
``skopeo … oci-archive:``) recognised by its content. Both are read in place through
``images.py`` (the tarball memory-mapped, so one bigger than ``--max-file-size`` is
still read, layer by layer as streams), with one unpack budget per image. A tarball met
inside a directory walk or another archive is unpacked by the same reader as an
expander (``ImageExpander``).

A source, kept in ``unpack/`` because it reads through the image reader (``sources/``
may not import ``unpack/``, which imports ``sources/``' ``Blob``): ``scan`` asks it
before the registry's sources; it takes only a local layout directory or image tarball.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass

from keyscope.sources.interface import Blob, Skipped, Source, SourceOptions, Unit, WorkerContext
from keyscope.unpack.images import (
    ImageFiles,
    LayoutDirectory,
    TarImageFiles,
    image_members,
    is_image,
    tar_names,
)
from keyscope.unpack.interface import Budget, UnpackLimits


def is_layout(root: str) -> bool:
    """Whether ``root`` is an OCI image layout directory."""
    return all(os.path.isfile(os.path.join(root, n)) for n in ("oci-layout", "index.json"))


def is_image_tarball(path: str) -> bool:
    """Whether the file ``path`` is an image tarball (its tar headers say so)."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            names = tar_names(mm)  # type: ignore[arg-type]
            return names is not None and is_image(names)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class ImageUnit:
    """One image root: read in a worker, its members scanned there."""

    root: str

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        outer = Blob(self.root, b"")
        if os.path.isdir(self.root):
            files: ImageFiles = LayoutDirectory(self.root)
            yield from image_members(files, outer, Budget(UnpackLimits(), _size(self.root)))
            return
        try:
            with open(self.root, "rb") as f:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            yield Skipped(self.root, f"image cannot be read ({exc})")
            return
        try:
            names = tar_names(mm)  # type: ignore[arg-type]
            if names is None:
                yield Skipped(self.root, "image archive cannot be read")
                return
            tarball = TarImageFiles(mm, names)  # type: ignore[arg-type]
            yield from image_members(tarball, outer, Budget(UnpackLimits(), len(mm)))
        finally:
            with suppress(BufferError):  # a view still held: it closes when dropped
                mm.close()


class ImageSource(Source):
    """Roots that are container images: an OCI layout directory, an image tarball."""

    name = "image"

    def __init__(self, options: SourceOptions) -> None:
        super().__init__(options)
        self.roots: list[str] = []

    def claim(self, root: str) -> bool:
        options = self.options
        if root == "-" or options.git or not options.secrets or options.unpack_depth < 1:
            return False  # --git, `keyscope models`, --unpack-depth 0: as other roots
        if not (is_layout(root) or (os.path.isfile(root) and is_image_tarball(root))):
            return False
        self.roots.append(root)
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        for root in self.roots:
            yield ImageUnit(root)


def _size(layout: str) -> int:
    """The bytes under a layout's ``blobs/`` (what the unpack ratio is measured on)."""
    total = 0
    try:
        for alg in os.scandir(os.path.join(layout, "blobs")):
            if alg.is_dir(follow_symlinks=False):
                for entry in os.scandir(alg.path):
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return total
