"""Which scanned source a location belongs to, and where in it.

A source is what was given to ``scan``: a local path (kept absolute, so the same
tree scanned from another folder is the same source), a repository URL (without
credentials) or ``stdin``. A place is the path inside it, with archive members
(``app.apk!/assets/conf.json``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from keyscope.model import Location
from keyscope.redact import mask
from keyscope.report.interface import member_place
from keyscope.sources.download import is_download, shown_url
from keyscope.sources.remote import is_remote, remote_label, split_credentials

STDIN = "stdin"


def source_name(root: str) -> str:
    """The inventory's name of a scan root."""
    if root == "-":
        return STDIN
    if is_download(root):
        return shown_url(root)  # as its locations show it: no credentials, no query
    if is_remote(root):
        return mask(split_credentials(root)[0])
    return os.path.realpath(root)


@dataclass(frozen=True)
class Roots:
    """The roots of one scan, longest shown prefix first."""

    prefixes: tuple[tuple[str, str], ...]  # (path prefix as reports show it, source)

    @classmethod
    def of(cls, roots: Sequence[str]) -> Roots:
        prefixes: list[tuple[str, str]] = []
        for root in roots:
            if root == "-":
                prefixes.append(("<stdin>", STDIN))
            elif is_download(root):  # a downloaded file: its locations show the URL
                prefixes.append((shown_url(root), source_name(root)))
            elif is_remote(root):
                prefixes.append((remote_label(split_credentials(root)[0]), source_name(root)))
            else:
                shown = os.path.normpath(root)
                prefixes.append(("" if shown == "." else shown, source_name(root)))
        prefixes.sort(key=lambda p: len(p[0]), reverse=True)
        return cls(tuple(prefixes))

    @property
    def sources(self) -> list[str]:
        return sorted({source for _, source in self.prefixes})

    def place(self, location: Location) -> tuple[str, str]:
        """``(source, place)`` of a location, unmasked: mask it (:func:`masked`)
        before it is stored."""
        path = location.path
        source, inside = "", path
        for prefix, name in self.prefixes:
            if prefix == "":
                source, inside = name, path
                break
            if path == prefix:
                source, inside = name, os.path.basename(path) or path
                break
            if path.startswith(prefix.rstrip("/") + "/"):
                source, inside = name, path[len(prefix.rstrip("/")) + 1 :]
                break
        return source, member_place(inside, location.origin)


def masked(texts: Sequence[str]) -> list[str]:
    """``redact.mask`` of each text, in one pass over them all (joined by line breaks;
    one by one if a masked span took a line break with it)."""
    if not texts:
        return []
    if not any("\n" in t for t in texts):
        joined = mask("\n".join(texts)).split("\n")
        if len(joined) == len(texts):
            return joined
    return [mask(t) for t in texts]
