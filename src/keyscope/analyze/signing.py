"""What AWS SigV4 and Google's V4 signed URLs share: the signing time, the lifetime
and the signed headers, read and checked against the credential scope the same way
(``X-Amz-…`` or ``X-Goog-…``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from keyscope.errors import ParseError


def signing_window(
    params: Mapping[str, str], label: str, scope_date: str, max_expires: int
) -> tuple[datetime, int, tuple[str, ...]]:
    """``(signed at, seconds valid, signed headers)`` of a V4 signed URL whose query
    parameters (lower-cased names) start with ``label`` (``X-Amz`` or ``X-Goog``);
    a ParseError when the date is malformed, differs from the scope's ``scope_date``
    (``YYYYMMDD``), or the lifetime is outside 1..``max_expires``."""
    prefix = label.lower()
    try:
        signed_at = datetime.strptime(params.get(f"{prefix}-date", ""), "%Y%m%dT%H%M%SZ")
        expires_in = int(params.get(f"{prefix}-expires", ""))
    except ValueError:
        raise ParseError(f"{label}-Date or {label}-Expires is missing or malformed") from None
    signed_at = signed_at.replace(tzinfo=UTC)
    if scope_date != signed_at.strftime("%Y%m%d") or not 1 <= expires_in <= max_expires:
        raise ParseError(
            f"{label}-Date does not match the credential scope, or {label}-Expires is out of"
            " range"
        )
    signed = params.get(f"{prefix}-signedheaders", "host").lower().split(";")
    return signed_at, expires_in, tuple(h for h in signed if h)
