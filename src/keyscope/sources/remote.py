"""Remote repositories: a bare mirror clone in a cache directory, fetched again on the
next run. ``file://`` URLs work the same way (the tests use them)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from keyscope.sources.git import GitError, git

_REMOTE = re.compile(r"^(?:https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


def is_remote(target: str) -> bool:
    return bool(_REMOTE.match(target))


def remote_label(url: str) -> str:
    """A short name for paths in reports: host/org/repo without credentials or .git."""
    text = re.sub(r"^[a-z]+://", "", url)
    text = text.split("@", 1)[-1].replace(":", "/", 1) if "@" in text.split("/", 1)[0] else text
    return text.removesuffix(".git").rstrip("/")


def mirror(url: str, cache: Path) -> Path:
    """Clone ``url`` as a bare mirror under ``cache``, or fetch into the existing one."""
    name = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = cache / f"{name}.git"
    if (target / "HEAD").is_file():
        git(target, "remote", "update", "--prune")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    try:
        git(cache, "clone", "--mirror", "--quiet", url, str(target))
    except GitError as exc:
        raise GitError(f"cannot clone {url}: {exc}") from None
    return target
