"""``--format html``: one self-contained page (no network request of any kind) that draws
the scan: a summary, per account a blast-radius card, a timeline and the revocation
checklist, model-file findings, filters and search.

The data is the JSON document (``jsonout.scan_document``: ``shown(result)``, every string
masked) with a link per location, embedded in a ``<script type="application/json">``
with every ``<``, ``>`` and ``&`` escaped so no finding can close it; the page's script
(``assets/report.js``) renders it lazily, its style is ``assets/report.css``. A
Content-Security-Policy meta tag forbids every load but the inline style and script.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from keyscope.analyze.timefmt import iso
from keyscope.report.interface import Format, shown, split_origin
from keyscope.report.jsonout import history_cut, stats_data, timeline_data, to_data

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keyscope.model import Finding, Location, ScanResult

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; form-action 'none'; base-uri 'none'"
)


class HtmlFormat(Format):
    """``--format html``: one page written after the scan."""

    def finish(self, result: ScanResult) -> None:
        self.out.write(
            render_scan(result, self.options.web, show_secrets=self.options.show_secrets)
        )


@cache
def _asset(name: str) -> str:
    return (Path(__file__).parent / "assets" / name).read_text(encoding="utf-8")


def embedded_json(value: Any) -> str:
    """``value`` as JSON safe inside ``<script>``: no ``<``, ``>``, ``&`` or line
    separators left that an HTML or JS parser would read."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
        ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def location_link(
    path: str, line: int, inside: bool, commit: str | None,
    web: Sequence[tuple[str, str, str]],
) -> str:
    """Where a location can be opened: its page (a crawl), the file at its commit on the
    repository's web site when the remote is known, else the local file."""
    if path.startswith(("https://", "http://")):
        return path
    if path.startswith("<"):  # <stdin>
        return ""
    for named, base, prefix in web:
        root = named.rstrip("/")
        if root in (".", ""):
            rel = path.removeprefix("./") if not os.path.isabs(path) else None
        elif path.startswith(root + "/"):
            rel = path[len(root) + 1 :]
        else:
            rel = None
        if rel is not None:
            full = f"{prefix}/{rel}" if prefix else rel
            anchor = "" if inside else f"#L{line}"
            return f"{base}/blob/{commit or 'HEAD'}/{quote(full, errors='surrogateescape')}{anchor}"
    try:
        return "file://" + quote(os.path.abspath(path), errors="surrogateescape")
    except ValueError:
        return ""


class _Shared:
    """Values many findings repeat (an account key's capabilities and revocation steps),
    stored once in the page and named by their index."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[str, int] = {}

    def ref(self, value: Any) -> int:
        key = json.dumps(value, sort_keys=True)
        if key not in self._index:
            self._index[key] = len(self.values)
            self.values.append(value)
        return self._index[key]


def _location(
    loc: Location, web: Sequence[tuple[str, str, str]], secrets: bool = False
) -> dict[str, Any]:
    g, im = loc.git, loc.image
    commit = g.commit if g else None
    return {
        "path": loc.path,
        "line": loc.line,
        "origin": list(split_origin(loc.origin)[0]),
        "snippet": loc.snippet,
        "href": location_link(loc.path, loc.line, bool(loc.origin), commit, web),
        "git": None if g is None else {
            "commit": g.commit, "date": g.date, "author": g.author,
            "removed_in": g.removed_in, "removed_date": g.removed_date,
            "removed_from_head": g.removed_from_head, "present_at_head": g.present_at_head,
        },
        "image": None if im is None else {
            "layer": im.layer, "removed_in": im.removed_in, "overwritten": im.overwritten,
        },
        "captured": loc.captured,
        "secret": loc.secret if secrets else None,
    }


def _finding(
    f: Finding, shared: _Shared, web: Sequence[tuple[str, str, str]], secrets: bool
) -> dict[str, Any]:
    e = f.explanation
    a = e.access
    v = a.validity
    return {
        "fingerprint": f.fingerprint,
        "rule_id": f.rule_id,
        "severity": e.severity.label,
        "sentence": e.sentence,
        "redacted": e.redacted,
        "provider": a.provider,
        "kind_label": a.kind_label,
        "account": a.account,
        "services": list(a.services),
        "scope": a.scope.description,
        "permissions": a.permissions,
        "capabilities": shared.ref(to_data(a.capabilities)),
        "destructive": list(a.destructive),
        "validity": {
            "start": iso(v.start), "expiry": iso(v.effective_expiry),
            "expired": v.expired, "summary": v.summary,
        },
        "network": a.network.summary,
        "revocation": shared.ref(to_data(a.revocation)),
        "verification": e.verification.summary if e.verification else None,
        "locations": [_location(loc, web, secrets) for loc in f.locations],
        "owners": [to_data(o) for o in f.owners],
    }


def page_data(
    result: ScanResult, web: Sequence[tuple[str, str, str]] = (), *, show_secrets: bool = False
) -> dict[str, Any]:
    """What the page draws: the scan as ``shown`` (every string masked), each location
    with its ``href`` (and its secret only under ``show_secrets``), the timelines of
    ``report/timeline.py``; repeated values once, in ``shared``."""
    result = shown(result)
    shared = _Shared()
    models = [to_data(m) for m in result.model_findings]
    for m in models:
        m["href"] = location_link(m["path"], 1, True, None, web)
    return {
        "now": iso(result.now),
        "stats": stats_data(result),
        "findings": [_finding(f, shared, web, show_secrets) for f in result.findings],
        "shared": shared.values,
        "model_findings": models,
        "timeline": timeline_data(result.findings),
        "skipped": [{"path": k.path, "reason": k.reason} for k in result.skipped],
        "history_cut": history_cut(result),
        "secrets_shown": show_secrets,
    }


def render_scan(
    result: ScanResult, web: Sequence[tuple[str, str, str]] = (), *, show_secrets: bool = False
) -> str:
    """The whole page of a scan. ``show_secrets``: the scan ran with --show-secrets, and
    the page says so and shows each location's secret (without it none is in the data)."""
    data = page_data(result, web, show_secrets=show_secrets)
    return render_page(data, f"keyscope report: {len(data['findings'])} credentials",
                       "scanned <time>{now}</time>")


def render_page(data: dict[str, Any], title: str, when: str) -> str:
    """The page around ``data`` (``page_data``'s shape; the inventory's too): the
    header, the secrets notice, the embedded JSON and the inline style and script.
    ``when`` is a line of HTML in which ``{now}`` stands for ``data["now"]``, escaped."""
    import html  # html.entities is large: only for this format

    from keyscope import __version__

    shows = bool(data.get("secrets_shown"))
    notice = (
        '<p class="secrets-notice secrets-shown" role="alert" id="secrets-notice"><strong>'
        "This page shows the secrets themselves</strong> (--show-secrets): treat the file "
        "as a secret; do not attach it to a ticket or share it.</p>"
        if shows else
        '<p class="secrets-notice meta" id="secrets-notice">Secrets are redacted in this '
        "page (only --show-secrets puts them in).</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{_asset('report.css')}</style>\n"
        "</head>\n<body>\n"
        '<a class="skip" href="#cards-heading">Skip to the accounts</a>\n'
        f'<header class="top"><h1>{html.escape(title.split(":")[0])}</h1>'
        f'<p class="meta">keyscope {html.escape(__version__)} · '
        f"{when.format(now=html.escape(data['now'] or ''))}</p>{notice}</header>\n"
        '<main id="app"><p id="loading">Loading the report… (it needs JavaScript; the data '
        "is also in this file as JSON)</p></main>\n"
        f'<script type="application/json" id="keyscope-data">{embedded_json(data)}</script>\n'
        f"<script>\n{_asset('report.js')}</script>\n"
        "</body>\n</html>\n"
    )
