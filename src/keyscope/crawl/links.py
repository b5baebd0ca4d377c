"""Links a page names, read statically (nothing is ever run): HTML elements and their
``href``/``src``/``srcset``, CSS ``url()`` and ``@import``, JavaScript ``import``,
``export … from``, dynamic ``import()`` with a literal path and root-relative paths
of scripts and JSON in string literals, sitemap ``<loc>`` entries; ``data:`` URIs
decoded."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote_to_bytes

# element → the attributes that name a URL to fetch
_URL_ATTRS = {
    "a": ("href",), "area": ("href",), "link": ("href",), "script": ("src",),
    "iframe": ("src",), "frame": ("src",), "img": ("src",), "source": ("src",),
    "embed": ("src",), "object": ("data",), "video": ("src", "poster"), "audio": ("src",),
    "track": ("src",), "form": ("action",),
}  # fmt: skip
_SRCSET = ("img", "source")
_CSS_URL = re.compile(
    rb"""url\(\s*(["']?)([^"')\s]{1,2048})\1\s*\)|@import\s+(["'])([^"']{1,2048})\3"""
)
_JS_IMPORT = re.compile(
    rb"""(?:\bimport|\bexport\s*(?:\*|\{[^}]{0,4096}\})\s*from|\bfrom)\s*\(?\s*(["'`])"""
    rb"""([^"'`\s]{1,2048})\1"""
)
_JS_PATH = re.compile(rb"""["'`](/[A-Za-z0-9._~!$&()*+,;=:@%/-]{1,2048}\.(?:json|m?js|map))["'`]""")
_SOURCE_MAPPING = re.compile(rb"""[#@]\s*sourceMappingURL\s*=\s*(\S{1,8192})""")
_SITEMAP_LOC = re.compile(rb"<loc>\s*([^<\s]{1,2048})\s*</loc>")
DATA_URI = re.compile(rb"""data:([A-Za-z0-9.+/-]{0,100})((?:;[A-Za-z0-9.=+_-]{1,100}){0,8}),"""
                      rb"""([A-Za-z0-9+/=%._~!$&*:@-]{1,16777216})""")


@dataclass(frozen=True)
class Links:
    """What a page names: URLs to fetch (as written) and its base URL, if it sets one."""

    urls: list[str]
    base: str | None = None


def kind_of(content_type: str | None, url: str, body: bytes) -> str:
    """``html``, ``css``, ``js``, ``json``, ``sitemap``, ``map`` or ``other``, by the
    declared type, else by the path and the first bytes."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    path = url.split("?", 1)[0].lower()
    head = body[:512].lstrip().lower()
    if path.endswith(".map"):
        return "map"
    if "html" in ctype or head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if "css" in ctype or path.endswith(".css"):
        return "css"
    if "javascript" in ctype or "ecmascript" in ctype or path.endswith((".js", ".mjs")):
        return "js"
    if "xml" in ctype and (b"<urlset" in head or b"<sitemapindex" in head):
        return "sitemap"
    if path.endswith(".xml") and (b"<urlset" in head or b"<sitemapindex" in head):
        return "sitemap"
    if "json" in ctype or path.endswith(".json"):
        return "json"
    return "other"


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.base: str | None = None
        self.inline: list[bytes] = []  # style and script text, style attributes
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v for k, v in attrs if v is not None}
        if tag == "base" and "href" in values and self.base is None:
            self.base = values["href"]
        for attr in _URL_ATTRS.get(tag, ()):
            if attr in values:
                self.urls.append(values[attr])
        if tag in _SRCSET and "srcset" in values:
            self.urls.extend(srcset(values["srcset"]))
        if "style" in values:
            self.inline.append(values["style"].encode("utf-8", "replace"))
        self._in = tag if tag in ("style", "script") and "src" not in values else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.inline.append(data.encode("utf-8", "replace"))


def srcset(value: str) -> list[str]:
    """The URLs of a ``srcset`` attribute (``a.png 1x, b.png 2x``)."""
    return [c.strip().split()[0] for c in value.split(",") if c.strip()]


def links(kind: str, body: bytes) -> Links:
    """The URLs ``body`` (a page of ``kind``) names, in order, as written."""
    if kind == "html":
        parser = _Html()
        try:
            parser.feed(body.decode("utf-8", "replace"))
            parser.close()
        except (AssertionError, ValueError):  # html.parser on hostile markup
            pass
        urls = list(parser.urls)
        for text in parser.inline:
            urls += css_links(text) + js_links(text)
        return Links(urls, parser.base)
    if kind == "css":
        return Links(css_links(body))
    if kind in ("js", "json"):
        return Links(js_links(body))
    if kind == "sitemap":
        return Links([_text(m.group(1)) for m in _SITEMAP_LOC.finditer(body)])
    return Links([])


def css_links(body: bytes) -> list[str]:
    return [_text(m.group(2) or m.group(4)) for m in _CSS_URL.finditer(body)]


def js_links(body: bytes) -> list[str]:
    found = [_text(m.group(2)) for m in _JS_IMPORT.finditer(body)]
    found += [_text(m.group(1)) for m in _JS_PATH.finditer(body)]
    return [u for u in found if u.startswith(("/", "./", "../", "http://", "https://"))]


def source_mapping_url(body: bytes) -> str | None:
    """The last ``//# sourceMappingURL=`` of a script (or ``/*# … */`` of a style)."""
    tail = body[-65536:] if len(body) > 65536 else body
    found = None
    for m in _SOURCE_MAPPING.finditer(tail):
        found = m.group(1)
    if found is None:
        return None
    return _text(found.removesuffix(b"*/"))


def data_uris(body: bytes, cap: int) -> list[tuple[str, bytes]]:
    """Each ``data:`` URI in ``body`` decoded: (media type, bytes), at most ``cap``
    bytes each (longer ones are passed over: their text is scanned as it stands)."""
    out = []
    for m in DATA_URI.finditer(body):
        payload = m.group(3)
        if len(payload) > cap * 2:
            continue
        data = decode_data(m.group(2), payload)
        if data is not None and data != payload:
            out.append((_text(m.group(1)) or "text/plain", data[:cap]))
    return out


def decode_data(params: bytes, payload: bytes) -> bytes | None:
    """A ``data:`` URI's payload decoded (Base64 when it says so, else percent-escapes)."""
    if b";base64" in params.lower():
        try:
            return base64.b64decode(unquote_to_bytes(payload) + b"==", validate=False)
        except ValueError:
            return None
    return unquote_to_bytes(payload)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").replace("&amp;", "&")
