"""Owner names as written (``@user``, ``@org/team``, ``@@maintainer``, an address,
``Name <address>``) → :class:`~keyscope.model.Owner`, and one list of owners from
many sources."""

from __future__ import annotations

import re
from collections.abc import Iterable

from keyscope.model import Owner

_ADDRESS = re.compile(r"[^\s@<>()\",;:]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}")
_NAMED = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>$")
MAX_LENGTH = 200  # a longer name or address is not one


def owner_from_text(text: str, via: str) -> Owner | None:
    """``@team`` → a handle, ``a@x.org`` → an address, ``Name <a@x.org>`` → both;
    ``None`` for anything else (a control character, an overlong or empty name)."""
    text = text.strip()
    if not text or len(text) > MAX_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    named = _NAMED.match(text)
    if named and is_address(named["email"]):
        return Owner(named["name"] or named["email"], named["email"], (via,))
    if is_address(text):
        return Owner(text, text, (via,))
    if text.startswith("@") and len(text) > 1 and not any(c.isspace() for c in text):
        return Owner(text, None, (via,))
    if not text.startswith("@") and "@" not in text:
        return Owner(text, None, (via,))  # a team name of the config map
    return None


def person(name: str | None, email: str | None, via: str) -> Owner | None:
    """A commit's author or committer."""
    address = email if email and is_address(email) else None
    shown = (name or "").strip() or address
    if not shown or len(shown) > MAX_LENGTH:
        return None
    return Owner(shown, address, (via,))


def is_address(text: str) -> bool:
    """An e-mail address one can send to (no display name, no control character)."""
    return len(text) <= MAX_LENGTH and _ADDRESS.fullmatch(text) is not None


def merged(owners: Iterable[Owner]) -> tuple[Owner, ...]:
    """One entry per person, team or address (same address, or same name without
    one), in first-seen order, with every reason it was named."""
    out: dict[str, Owner] = {}
    for o in owners:
        key = (o.email or o.name).lower()
        old = out.get(key)
        if old is None:
            out[key] = o
        else:
            via = tuple(dict.fromkeys((*old.via, *o.via)))
            out[key] = Owner(old.name, old.email or o.email, via)
    return tuple(out.values())
