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

import html
import json
import os
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from keyscope.report.interface import Format
from keyscope.report.jsonout import scan_document

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keyscope.model import ScanResult

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; form-action 'none'; base-uri 'none'"
)


class HtmlFormat(Format):
    """``--format html``: one page written after the scan."""

    def finish(self, result: ScanResult) -> None:
        self.out.write(render_scan(result, self.options.web))


@cache
def _asset(name: str) -> str:
    return files("keyscope.report").joinpath("assets", name).read_text(encoding="utf-8")


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
    for shown, base, prefix in web:
        root = shown.rstrip("/")
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


def page_data(result: ScanResult, web: Sequence[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """The JSON document of the scan, each location with its ``href``."""
    doc = scan_document(result)
    for f in doc["findings"]:
        for loc in f["locations"]:
            git = loc.get("git") or {}
            loc["href"] = location_link(
                loc["path"], loc["line"], bool(loc.get("origin")), git.get("commit"), web
            )
    for m in doc["model_findings"]:
        m["href"] = location_link(m["path"], 1, True, None, web)
    return doc


def render_scan(result: ScanResult, web: Sequence[tuple[str, str, str]] = ()) -> str:
    """The whole page."""
    from keyscope import __version__

    data = page_data(result, web)
    title = f"keyscope report: {len(data['findings'])} credentials"
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
        '<header class="top"><h1>keyscope report</h1>'
        f'<p class="meta">keyscope {html.escape(__version__)} · scanned '
        f'<time>{html.escape(data["now"] or "")}</time></p></header>\n'
        '<main id="app"><p id="loading">Loading the report… (it needs JavaScript; the data '
        "is also in this file as JSON)</p></main>\n"
        f'<script type="application/json" id="keyscope-data">{embedded_json(data)}</script>\n'
        f"<script>\n{_asset('report.js')}</script>\n"
        "</body>\n</html>\n"
    )
