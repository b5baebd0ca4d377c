"""Remote repositories: a bare mirror clone in a private cache directory, fetched again
on the next run. ``file://`` URLs work the same way (the tests use them).

Credentials in a URL (``https://user:TOKEN@host/repo``) are never stored or shown:
git gets the bare URL, and the credentials travel as an HTTP header in git's
environment (not on its command line, which other users can read), for this run only.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from keyscope.sources.git import NO_EXECUTION, GitError, find_repository, git
from keyscope.sources.history import GitSource
from keyscope.sources.interface import Skipped, Source, SourceOptions, Unit

_REMOTE = re.compile(r"^(?:https?|ssh|git|file)://|^\w[\w.-]*@[\w.-]+:")
# Clone and fetch may use the network, over these transports only (never ext::,
# whatever the user's own configuration allows).
_TRANSPORT = (
    *(
        s
        for s in NO_EXECUTION
        if not s.startswith(("protocol.", "core.sshCommand", "core.gitProxy"))
    ),
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "protocol.ssh.allow=always",
    "protocol.git.allow=always",
    "protocol.file.allow=always",
)


def is_remote(target: str) -> bool:
    return not target.startswith("-") and bool(_REMOTE.match(target))


def split_credentials(url: str) -> tuple[str, str | None]:
    """``(url without user:password, "user:password" or None)`` for http(s) URLs; an
    ssh URL keeps its user name (not a secret) and loses a password."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ssh", "git") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme == "ssh":
        user = userinfo.split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}@{host}")), None
    return urlunsplit(parts._replace(netloc=host)), unquote(userinfo)


def remote_label(url: str) -> str:
    """A short name for paths in reports: host/org/repo without credentials or .git."""
    text = re.sub(r"^[a-z]+://", "", url)
    if text != url:  # scheme://[user[:password]@]host[:port]/path
        head, slash, path = text.partition("/")
        text = head.rpartition("@")[2] + slash + path
    elif "@" in text.split("/", 1)[0]:  # scp-like user@host:path
        text = text.split("@", 1)[-1].replace(":", "/", 1)
    return text.removesuffix(".git").rstrip("/")


def mirrors_in(cache: Path) -> Path:
    """The folder of keyscope's cache that holds the mirrors."""
    return cache / "repos"


def mirror_path(url: str, cache: Path) -> Path:
    """Where :func:`mirror` keeps ``url``'s mirror under ``cache`` (named after the URL
    without its credentials)."""
    bare, _ = split_credentials(url)
    return cache / f"{hashlib.sha256(bare.encode()).hexdigest()[:16]}.git"


def mirror(url: str, cache: Path) -> Path:
    """Clone ``url`` as a bare mirror under ``cache``, or fetch into the existing one.
    The cache directory is private (0700)."""
    bare, credentials = split_credentials(url)
    env = _auth_env(credentials)
    target = mirror_path(url, cache)
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(cache, 0o700)
    if credentials is not None:
        # Earlier versions named the mirror after the URL with its credentials, and
        # kept them in the mirror's config: remove it.
        stale = cache / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"
        if stale != target and (stale / "HEAD").is_file():
            shutil.rmtree(stale, ignore_errors=True)
    if (target / "HEAD").is_file():
        try:
            # a mirror made by an older keyscope may hold credentials in its URL
            git(target, "config", "remote.origin.url", bare)
            git(target, "remote", "update", "--prune", config=_TRANSPORT, env=env)
        except GitError as exc:
            raise GitError(f"cannot fetch {bare}: {_hide(str(exc), credentials)}") from None
        return target
    try:
        git(
            cache,
            "clone",
            "--mirror",
            "--quiet",
            "--",
            bare,
            str(target),
            config=_TRANSPORT,
            env=env,
        )
    except GitError as exc:
        raise GitError(f"cannot clone {bare}: {_hide(str(exc), credentials)}") from None
    os.chmod(target, 0o700)
    return target


def _auth_env(credentials: str | None) -> dict[str, str]:
    """Basic authentication for this run, passed as config through the environment."""
    if credentials is None:
        return {}
    token = base64.b64encode(credentials.encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }


def _hide(message: str, credentials: str | None) -> str:
    if not credentials:
        return message
    for part in {credentials, *credentials.split(":", 1)}:
        if part:
            message = message.replace(part, "***")
    return message


class RemoteSource(Source):
    """A repository URL: mirrored (when its turn comes), then scanned as a git source."""

    name = "remote"

    def __init__(self, options: SourceOptions, git: GitSource, cache: Path) -> None:
        super().__init__(options)
        self.git = git
        self.cache = cache  # mirrors go to mirrors_in(cache)

    def claim(self, root: str) -> bool:
        if not is_remote(root):
            return False
        self.git.take(root, lambda: self._mirrored(root), remote_label(root))
        return True

    def _mirrored(self, url: str) -> tuple[Path | None, str]:
        mirrored = mirror(url, mirrors_in(self.cache))
        # with git=False there is no repository to scan it as: an error, after the fetch
        repo = None if self.options.git is False else find_repository(mirrored)
        return repo, remote_label(url)

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        return iter(())  # its roots are the git source's
