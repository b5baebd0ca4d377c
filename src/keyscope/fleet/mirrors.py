"""Repository mirrors shared by the tasks of one machine: the tasks of a repository in
pieces may run at once in several worker processes, each needing the mirror.

``shared_mirror`` holds an exclusive lock (``fcntl.flock`` on ``<mirror>.lock``
beside the mirror in the scan's cache) while it clones or fetches, so one process
does it and the others wait, then use what it made. A mirror is complete once
the marker file ``keyscope-mirrored`` is in it: a clone killed half-way leaves none,
and the next task removes it and clones again. The marker holds the token of the
scan that last fetched: the other pieces of that scan on this machine use the
mirror as it is, without fetching again.
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

from keyscope.sources.remote import mirror, mirror_path, mirrors_in

MARKER = "keyscope-mirrored"


def shared_mirror(url: str, cache: Path, token: str) -> Path:
    """The up-to-date mirror of ``url`` under ``cache`` (the scan's cache folder),
    cloned or fetched at most once per ``token`` on this machine."""
    folder = mirrors_in(cache)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = mirror_path(url, folder)
    marker = target / MARKER
    with open(target.with_name(target.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        try:
            fetched_by = marker.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            fetched_by = None
            if target.exists():  # a clone that never finished
                shutil.rmtree(target, ignore_errors=True)
        if fetched_by == token:
            return target
        made = mirror(url, folder)
        (made / MARKER).write_text(token + "\n", encoding="ascii")
        return made
