"""Where a scanned repository can be read on the web: ``git@github.com:acme/web.git``
→ ``https://github.com/acme/web``, so a report can link each location to its commit."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from keyscope.sources.download import is_download
from keyscope.sources.git import GitError, git
from keyscope.sources.remote import is_remote, remote_label, split_credentials

_SCP = re.compile(r"^[\w.-]+@([\w.-]+):(?!/)(.+)$")  # git@host:org/repo.git


@dataclass(frozen=True)
class WebRoot:
    """A scanned root whose repository has a web address."""

    shown: str  # how reports name the paths under it (the root as given, a remote's label)
    web: str  # https://host/org/repo
    prefix: str = ""  # the root's folder inside the repository ("" at its top)


def web_base(url: str) -> str | None:
    """The https address of a repository's remote URL; None for a local path or file://."""
    url = split_credentials(url.strip())[0]
    scp = _SCP.match(url)
    if scp:
        host, path = scp.groups()
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    path = path.strip("/").removesuffix(".git").strip("/")
    return f"https://{host}/{path}" if path else None


def web_roots(roots: Sequence[str]) -> tuple[WebRoot, ...]:
    """The web address of each scanned root that is (or is inside) a repository with an
    ``origin`` remote, or is itself a remote URL."""
    out = []
    for root in roots:
        if root == "-" or is_download(root):  # a file, not a repository
            continue
        if is_remote(root):
            base = web_base(root)
            if base:
                out.append(WebRoot(remote_label(split_credentials(root)[0]), base))
            continue
        folder = Path(root) if os.path.isdir(root) else Path(root).parent
        try:
            top = git(folder, "rev-parse", "--show-prefix", check=False).decode().strip()
            url = git(folder, "config", "--get", "remote.origin.url", check=False)
        except (GitError, OSError):
            continue
        base = web_base(url.decode("utf-8", "replace"))
        if base:
            out.append(WebRoot(str(folder), base, top.rstrip("/")))
    return tuple(out)
