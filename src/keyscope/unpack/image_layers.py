"""What each layer of a container image does to the files below it (OCI ``layer.md``):
``.wh.NAME`` deletes NAME (and what is under it) from lower layers, ``DIR/.wh..wh..opq``
hides every lower child of DIR, an entry replaces the same path of a lower layer and a
non-directory replaces a lower directory tree. :class:`LayerChanges` holds one layer's
entries (headers only); :func:`hidden_by` says which later layer hides a file.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def clean(name: str) -> str:
    """A layer member's path as the image's file system sees it (``./a//b`` → ``a/b``)."""
    path = posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")
    return "" if path == "." else path


def is_whiteout(name: str) -> bool:
    """Whether a layer member is a whiteout marker (never a file of the image)."""
    return posixpath.basename(clean(name)).startswith(WHITEOUT)


def _parents(path: str) -> list[str]:
    """``a/b/c`` → ``["a/b", "a"]``."""
    out = []
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        out.append(path)
    return out


@dataclass
class LayerChanges:
    """One layer's changes, from its tar headers: entries (path → is a directory),
    paths it deletes from lower layers, directories it makes opaque."""

    entries: dict[str, bool] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)

    def add(self, name: str, is_dir: bool) -> None:
        """Record the member ``name`` (a whiteout marker or an entry)."""
        path = clean(name)
        folder, base = posixpath.split(path)
        if base == OPAQUE:
            self.opaque.add(folder)
        elif base.startswith(OPAQUE[:8]):  # other .wh..wh.* (AUFS leftovers): no meaning
            return
        elif base.startswith(WHITEOUT):
            self.deleted.add(posixpath.join(folder, base[len(WHITEOUT) :]))
        elif path:
            self.entries[path] = is_dir

    def hides(self, path: str) -> str | None:
        """How this layer hides ``path`` of a lower layer: "deleted", "overwritten" or
        None (it does not)."""
        parents = _parents(path)
        if path in self.deleted or any(p in self.deleted for p in parents):
            return "deleted"
        if any(p in self.opaque for p in ("", *parents)):
            return "deleted"
        if path in self.entries:
            return "overwritten"
        if any(p in self.entries and not self.entries[p] for p in parents):
            return "deleted"  # a file where a directory was: the tree is gone
        return None


def hidden_by(path: str, layer: int, layers: list[LayerChanges]) -> tuple[int, bool] | None:
    """The first layer above ``layer`` (1-based) that hides ``path``, and whether it
    overwrote it (rather than deleting it); None when the file is in the final
    file system."""
    for above in range(layer, len(layers)):
        how = layers[above].hides(clean(path))
        if how is not None:
            return above + 1, how == "overwritten"
    return None
