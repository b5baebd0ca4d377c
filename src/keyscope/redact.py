"""Keep secrets out of every output: mask known secrets and anything shaped like one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "…"
_SIG_VALUE = re.compile(
    r"(?i)(sig(?:=|%3d|%253d|\\u003d))([A-Za-z0-9%+/=]{4})[A-Za-z0-9%+/=\\]{4,}"
)
_KEY_VALUE = re.compile(r"[A-Za-z0-9+/]{86}==")


def mask_secret(secret: str) -> str:
    """The first four characters, then an ellipsis."""
    return secret[:4] + MASK


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret (in its plain and URL-encoded forms), every
    ``sig=`` value and every account-key-shaped run masked."""
    for secret in secrets:
        plain = {secret, quote(secret, safe=""), quote(secret, safe="/")}
        forms = plain | {f.replace("/", "\\/") for f in plain}  # JSON-escaped slashes
        for form in sorted(forms, key=len, reverse=True):
            if len(form) >= 8:
                text = text.replace(form, mask_secret(form))
    text = _SIG_VALUE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _KEY_VALUE.sub(lambda m: mask_secret(m.group(0)), text)
