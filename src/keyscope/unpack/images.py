"""Container images: ``docker save`` / ``podman save`` tarballs (classic, and Docker 25+
with an OCI layout inside) and OCI image layouts (a tarball here; a directory given as a
scan root is ``sources/images.py``, over the same reader).

An image is read from its index (``index.json``, nested indexes followed) or, failing
that, ``manifest.json``; its config's ``Env``, ``Labels``, ``Cmd``, ``Entrypoint`` and
each history entry's ``created_by`` (where ``ARG``/``ENV`` values end up) become
members ``config!/Env`` … with one line per entry. Then every layer, bottom to top, as a
stream (plain tar, gzip, bzip2 or xz; never extracted): its files are members
``layer N (sha256:…12)!/path`` carrying an :class:`~keyscope.model.ImageProvenance`
that says which later layer deleted or replaced them (a first pass over the layers'
headers finds the whiteouts).
"""

from __future__ import annotations

import json
import mmap
import os
import posixpath
import re
import stat
import tarfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import IO, Any, cast

from keyscope.model import ImageProvenance, Skipped
from keyscope.modelfiles.containers import view_reader
from keyscope.sources.interface import Blob
from keyscope.unpack.archives import (
    BZ2,
    DAMAGED,
    GZIP,
    XZ,
    OutOfTime,
    _decompressing,
    _kind,
    admit,
    is_tar,
    member,
    tar_members,
    timed,
)
from keyscope.unpack.image_layers import LayerChanges, clean, hidden_by, is_whiteout
from keyscope.unpack.interface import Budget, Expander, member_path

JSON_BYTES = 16 * 1024 * 1024  # an index, manifest or config (metadata bombs)
NAMES = 4096  # members of an image tarball looked at (layers are one member each)
NESTING = 4  # indexes inside indexes
LAYER_MEMBERS = 1_000_000  # headers of one layer (its members also spend the budget)
LINK_REASONS = ("symbolic link member", "hard link member")  # archives.tar_members' words
ZSTD = b"\x28\xb5\x2f\xfd"
DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]{1,256})")
INDEXES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
CONFIG_FIELDS = ("Env", "Labels", "Cmd", "Entrypoint", "OnBuild", "Shell")


class Unreadable(Exception):
    """An image file that is missing, too big or not what it says (the reason)."""


class ImageFiles(ABC):
    """The files of an image archive or layout, by name (``blobs/sha256/…``,
    ``manifest.json``), read in place: never written anywhere."""

    @abstractmethod
    def has(self, name: str) -> bool:
        """Whether the file ``name`` exists (a regular file, links resolved)."""

    @abstractmethod
    def opened(self, name: str) -> AbstractContextManager[bytes]:
        """The content of ``name`` while the context lasts (a view, not a copy);
        :class:`Unreadable` when it is missing."""

    def json(self, name: str) -> Any:
        """``name`` parsed as JSON, at most :data:`JSON_BYTES`."""
        with self.opened(name) as data:
            if len(data) > JSON_BYTES:
                raise Unreadable(f"{name} is larger than {JSON_BYTES} bytes")
            try:
                return json.loads(bytes(data))
            except (ValueError, RecursionError) as exc:
                raise Unreadable(f"{name} is not JSON ({type(exc).__name__})") from None


class TarImageFiles(ImageFiles):
    """The members of an image tarball held in memory (symbolic and hard links
    resolved by name inside the archive, never on disk)."""

    def __init__(self, data: bytes, infos: dict[str, tarfile.TarInfo]) -> None:
        self.data = data
        self.infos = infos

    def _info(self, name: str) -> tarfile.TarInfo | None:
        info = self.infos.get(name)
        for _ in range(8):
            if info is None or not (info.issym() or info.islnk()):
                break
            base = posixpath.dirname(info.name) if info.issym() else ""
            info = self.infos.get(clean(posixpath.join(base, info.linkname)))
        return info if info is not None and info.isfile() and not info.issparse() else None

    def has(self, name: str) -> bool:
        return self._info(name) is not None

    def opened(self, name: str) -> AbstractContextManager[bytes]:
        info = self._info(name)
        if info is None:
            raise Unreadable(f"{name} is not in the archive")
        end = info.offset_data + info.size
        if end > len(self.data):
            raise Unreadable(f"{name} is cut short")
        return nullcontext(cast(bytes, memoryview(self.data)[info.offset_data : end]))


def tar_names(data: bytes, limit: int = NAMES) -> dict[str, tarfile.TarInfo] | None:
    """The headers of the tar in ``data`` by clean name (the data is skipped, not read),
    those before any damage; None when it has more than ``limit`` members or no
    readable one."""
    if not is_tar(bytes(data[257:262])):
        return None
    out: dict[str, tarfile.TarInfo] = {}
    try:
        with view_reader(data) as raw, tarfile.open(fileobj=raw, mode="r:") as archive:
            while (info := archive.next()) is not None:
                if len(out) >= limit:
                    return None
                out.setdefault(clean(info.name), info)
    except DAMAGED:
        pass
    return out or None


def is_image(names: dict[str, tarfile.TarInfo]) -> bool:
    """Whether a tarball's names are those of a saved image or an OCI layout."""
    return "manifest.json" in names or ("oci-layout" in names and "index.json" in names)


class ImageExpander(Expander):
    """A ``docker save`` / ``podman save`` / ``skopeo`` tarball or an OCI layout tar:
    the image's config, then each layer's files, bottom to top."""

    name = "image"
    binary = True  # a tar

    def claims(self, blob: Blob) -> bool:
        names = tar_names(blob.data)
        return names is not None and is_image(names)

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        names = tar_names(blob.data)
        if names is None:
            yield Skipped(member_path(blob), "image archive cannot be read")
            return
        yield from image_members(TarImageFiles(blob.data, names), blob, budget)


@dataclass(frozen=True)
class Image:
    """One image of an archive or layout: where its config and layers are."""

    label: str | None  # shown before its members when the archive holds several
    config: str
    layers: tuple[tuple[str, str | None], ...]  # (file name, digest) bottom to top


def image_members(files: ImageFiles, outer: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
    """Every image in ``files`` (``outer`` names them): config members, then layer files
    with their provenance. Never raises for hostile input: a Skipped says what was not
    read."""
    try:
        images = find_images(files)
    except (Unreadable, *DAMAGED) as exc:
        yield Skipped(member_path(outer), f"image cannot be read ({exc})")
        return
    if not images:
        yield Skipped(member_path(outer), "image archive names no image")
        return
    for image in images:
        here = outer if image.label is None else member(outer, image.label, b"")
        yield from _image(files, image, here, budget)


def find_images(files: ImageFiles) -> list[Image]:
    """The images ``index.json`` names (nested indexes followed), or those of
    ``manifest.json`` when there is no usable index (Docker 25 wrote broken ones)."""
    images: list[Image] = []
    if files.has("index.json"):
        images = _from_index(files, files.json("index.json"), 0)
    if not images and files.has("manifest.json"):
        images = _from_docker_manifest(files.json("manifest.json"))
    if len(images) == 1:
        images = [replace(images[0], label=None)]
    return images


def _from_index(files: ImageFiles, index: Any, depth: int) -> list[Image]:
    out: list[Image] = []
    for n, desc in enumerate(_list(_dict(index).get("manifests")), 1):
        desc = _dict(desc)
        name = _blob_name(desc.get("digest"))
        if name is None or not files.has(name):
            continue
        annotations = _dict(desc.get("annotations"))
        if desc.get("mediaType") in INDEXES:
            if depth < NESTING:
                out += _from_index(files, files.json(name), depth + 1)
            continue
        manifest = _dict(files.json(name))
        if "manifests" in manifest and depth < NESTING:  # an index without its media type
            out += _from_index(files, manifest, depth + 1)
            continue
        config = _blob_name(_dict(manifest.get("config")).get("digest"))
        if config is None:
            continue
        layers = []
        for layer in _list(manifest.get("layers")):
            digest = _dict(layer).get("digest")
            if (layer_name := _blob_name(digest)) is not None:
                layers.append((layer_name, str(digest)))
        ref = annotations.get("org.opencontainers.image.ref.name")
        platform = _dict(desc.get("platform"))
        where = "/".join(str(platform[k]) for k in ("os", "architecture") if k in platform)
        label = f"image {ref or desc.get('digest', n)}" + (f" ({where})" if where else "")
        out.append(Image(label, config, tuple(layers)))
    return out


def _from_docker_manifest(manifest: Any) -> list[Image]:
    out: list[Image] = []
    for n, entry in enumerate(_list(manifest), 1):
        entry = _dict(entry)
        config = entry.get("Config")
        if not isinstance(config, str):
            continue
        layers = tuple((clean(str(name)), None) for name in _list(entry.get("Layers")))
        tags = [str(t) for t in _list(entry.get("RepoTags"))]
        out.append(Image(f"image {tags[0] if tags else n}", clean(config), layers))
    return out


@dataclass(frozen=True)
class Layer:
    """One layer of an image: its file in the archive, its digest, its history step."""

    number: int  # 1 = bottom
    name: str
    digest: str
    created_by: str | None

    @property
    def label(self) -> str:
        """``layer 2 (sha256:abcd1234abcd)``: the member name of the layer."""
        alg, _, hexa = self.digest.partition(":")
        short = f"{alg}:{hexa[:12]}" if hexa else self.digest[:19]
        return f"layer {self.number} ({short})"


def _image(
    files: ImageFiles, image: Image, outer: Blob, budget: Budget
) -> Iterator[Blob | Skipped]:
    """One image's members: config, then each layer's files with their provenance.
    Once the budget is spent, every further member is a Skipped saying so."""
    try:
        config = _dict(files.json(image.config))
    except Unreadable as exc:
        yield Skipped(member_path(outer, "config"), str(exc))
        config = {}
    here = member(outer, "config", b"")
    for name, text in config_members(config):
        if (spent := budget.spend(len(text))) is not None:
            yield Skipped(member_path(here, name), spent)
            continue
        yield member(here, name, text.encode("utf-8", "replace"))
    layers = _layers(image, config)
    changes: list[LayerChanges | None] = []  # None: not a tar, scanned as one blob
    readable: list[Layer] = []
    for layer in layers:
        # what a layer hides is asked of the layers above the bottom one only
        found = _changes(files, layer.name, budget, headers=layer.number > 1)
        if isinstance(found, str):
            yield Skipped(member_path(outer, layer.label), found)
        else:
            readable.append(layer)
        changes.append(found if not isinstance(found, str) else LayerChanges())
    for layer in readable:
        try:
            if changes[layer.number - 1] is None:
                yield from _blob_layer(files, layer, outer, budget)
            else:
                yield from _layer_files(files, layer, layers, changes, outer, budget)
        except (Unreadable, *DAMAGED) as exc:
            reason = f"image layer cannot be read ({exc})"
            yield Skipped(member_path(outer, layer.label), reason)


def _layers(image: Image, config: dict[str, Any]) -> list[Layer]:
    """The image's layers, bottom to top, with their digests and history steps (a
    docker-save manifest names files: the digest is then the config's ``diff_ids``)."""
    steps = _layer_steps(config)
    diff_ids = [str(d) for d in _list(_dict(config.get("rootfs")).get("diff_ids"))]
    out = []
    for n, (name, digest) in enumerate(image.layers):
        if digest is None:
            digest = diff_ids[n] if n < len(diff_ids) else _digest_of(name)
        out.append(Layer(n + 1, name, digest, steps[n] if n < len(steps) else None))
    return out


def _layer_files(
    files: ImageFiles,
    layer: Layer,
    layers: list[Layer],
    changes: list[LayerChanges | None],
    outer: Blob,
    budget: Budget,
) -> Iterator[Blob | Skipped]:
    """A layer's files, each with the story of what the layers above did to it; link
    members counted in one Skipped (a link's target is another file of the image, and
    base layers hold thousands)."""
    here = member(outer, layer.label, b"")
    known = [c if c is not None else LayerChanges() for c in changes]
    not_followed = 0
    with files.opened(layer.name) as data, _layer_stream(data, budget) as stream:
        for item in tar_members(here, stream, budget):
            if isinstance(item, Skipped):
                if item.reason.startswith(LINK_REASONS):
                    not_followed += 1
                else:
                    yield item
                continue
            path = item.origin[-1]
            if is_whiteout(path):
                continue
            provenance = ImageProvenance(layer.number, layer.digest, layer.created_by)
            above = hidden_by(path, layer.number, known)
            if above is not None:
                removed_in, overwritten = above
                removed_by = layers[removed_in - 1].created_by
                provenance = replace(provenance, removed_in=removed_in, removed_by=removed_by,
                                     overwritten=overwritten)  # fmt: skip
            yield replace(item, image=provenance)
    if not_followed:
        reason = f"{not_followed} link members not followed (their targets are files of the image)"
        yield Skipped(member_path(here), reason)


def _blob_layer(
    files: ImageFiles, layer: Layer, outer: Blob, budget: Budget
) -> Iterator[Blob | Skipped]:
    """A layer that is not a tar (an attestation, an OCI artifact): one member, scanned
    as it is (and unpacked if another expander claims it)."""
    with files.opened(layer.name) as data:
        skip, _ = admit(outer, layer.label, len(data), budget)
        if skip is not None:
            yield skip
            return
        yield member(outer, layer.label, bytes(data))


def config_members(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The config's fields that carry values, each as (member name, text) with one line
    per entry; line N of ``history`` is history entry N's ``created_by``."""
    for section, prefix in (("config", ""), ("container_config", "container_config ")):
        fields = _dict(config.get(section))
        for key in CONFIG_FIELDS:
            value = fields.get(key)
            if isinstance(value, dict):
                lines = [f"{k}={v}" for k, v in value.items()]
            else:
                lines = [str(v) for v in _list(value)]
            if lines:
                yield prefix + key, "\n".join(_one_line(line) for line in lines) + "\n"
    history = [_one_line(str(_dict(h).get("created_by", ""))) for h in _list(config.get("history"))]
    if any(history):
        yield "history", "\n".join(history) + "\n"


def _layer_steps(config: dict[str, Any]) -> list[str | None]:
    """Each layer's history entry (``created_by``), in layer order: the entries without
    ``empty_layer``."""
    out: list[str | None] = []
    for entry in _list(config.get("history")):
        entry = _dict(entry)
        if not entry.get("empty_layer"):
            created_by = entry.get("created_by")
            out.append(str(created_by) if created_by is not None else None)
    return out


def _changes(
    files: ImageFiles, name: str, budget: Budget, headers: bool
) -> LayerChanges | str | None:
    """The layer's headers read once (its data streamed past; nothing read unless
    ``headers``); None when the layer is not a tar (nor a compressed one); or why it
    cannot be read."""
    changes = LayerChanges()
    try:
        with files.opened(name) as data:
            if _compression(data) is None and not is_tar(bytes(data[257:262])):
                return None
            if not headers:
                return changes
            with (
                _layer_stream(data, budget) as stream,
                tarfile.open(fileobj=stream, mode="r|") as archive,
            ):
                for count, info in enumerate(archive):
                    if count >= LAYER_MEMBERS:
                        return f"image layer has more than {LAYER_MEMBERS} members"
                    changes.add(info.name, info.isdir())
    except (Unreadable, *DAMAGED) as exc:
        return f"image layer cannot be read ({exc})"
    return changes


def _compression(data: bytes) -> bytes | None:
    """The magic of a compressed layer (gzip, bzip2, xz, zstd), or None."""
    head = bytes(data[:6])
    for magic in (GZIP, BZ2, ZSTD):
        if head.startswith(magic):
            return magic
    return XZ if head == XZ else None


@contextmanager
def _layer_stream(data: bytes, budget: Budget) -> Iterator[IO[bytes]]:
    """A layer's tar as a stream, decompressed by its content (gzip, bzip2, xz, zstd),
    that stops once the image's time is up (skipping a member still decompresses it)."""
    magic = _compression(data)
    with view_reader(data) as raw:
        try:
            if magic is None:
                yield timed(raw, budget)
                return
            with _decompressing(_kind(magic), raw) as stream:
                yield timed(stream, budget)
        except OutOfTime as exc:
            raise Unreadable(str(exc)) from None


def _digest_of(name: str) -> str:
    """A digest read off a file name (``<hex>.tar``, ``<id>/layer.tar``), or the name."""
    for part in reversed(name.replace(".tar", "").split("/")):
        if re.fullmatch(r"[a-f0-9]{64}", part):
            return f"sha256:{part}"
    return name


def _blob_name(digest: object) -> str | None:
    """Where a digest's content is in a layout (``blobs/sha256/<hex>``), if well formed."""
    if not isinstance(digest, str) or (m := DIGEST.fullmatch(digest)) is None:
        return None
    return f"blobs/{m.group(1)}/{m.group(2)}"


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


class LayoutDirectory(ImageFiles):
    """An OCI image layout directory: only ``oci-layout``, ``index.json`` and
    ``blobs/<alg>/<hex>`` are opened, regular files only (no link is followed), each
    memory-mapped while it is read."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, name: str) -> str | None:
        if name in ("oci-layout", "index.json"):
            return os.path.join(self.root, name)
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "blobs" and DIGEST.fullmatch(f"{parts[1]}:{parts[2]}"):
            return os.path.join(self.root, *parts)
        return None

    def has(self, name: str) -> bool:
        path = self._path(name)
        try:
            return path is not None and stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            return False

    @contextmanager
    def opened(self, name: str) -> Iterator[bytes]:
        path = self._path(name)
        if path is None:
            raise Unreadable(f"{name} is not a file of an image layout")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise Unreadable(f"{name} cannot be opened ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise Unreadable(f"{name} is not a regular file")
            if info.st_size == 0:
                yield b""
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                try:
                    yield cast(bytes, view)  # read like bytes, copies nothing
                finally:
                    view.release()
