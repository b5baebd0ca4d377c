"""What a many-target scan scans: ``--targets FILE`` lines and forge organisations.

A target file holds one repository URL, path, web archive or artifact per line;
blank lines and ``#`` comments are ignored. ``github:ORG`` and ``gitlab:GROUP`` roots
are replaced by the clone URLs of the organisation's repositories (``forge.py``).
"""

from __future__ import annotations

from pathlib import Path

from keyscope.errors import KeyscopeError
from keyscope.fleet.forge import FORGES, ForgeOptions, list_repositories


def read_targets(path: Path) -> list[str]:
    """The targets listed in ``path``: one per line, ``#`` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyscopeError(f"--targets {path}: cannot be read ({type(exc).__name__})") from None
    targets: list[str] = []
    for line in text.splitlines():
        target = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if target:
            targets.append(target)
    return targets


def forge_root(root: str) -> tuple[str, str] | None:
    """``("github", "ORG")`` for ``github:ORG`` (``gitlab:GROUP`` likewise), else None."""
    kind, sep, name = root.partition(":")
    if sep and kind in FORGES and name and not name.startswith("/"):
        return kind, name
    return None


def expand_targets(roots: list[str], options: ForgeOptions) -> list[str]:
    """``roots`` with every forge root replaced by its repositories' clone URLs, in
    the forge's order; a target named twice is scanned once."""
    out: list[str] = []
    for root in roots:
        forge = forge_root(root)
        out.extend(list_repositories(*forge, options) if forge else [root])
    return list(dict.fromkeys(out))
