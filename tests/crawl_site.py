"""A realistic website on loopback for the crawl and web-archive tests.

``build_site(root)`` writes it: HTML pages, a stylesheet, an ES-module bundle built by
the real esbuild (pinned in ``tests/site/package.json``; installed with ``npm ci``
when missing) with its source map and a lazily loaded chunk, a second bundle whose
map has no ``sourcesContent``, a JSON config endpoint, a sitemap, a model file, and a
real SAS token (signed by azure-storage-blob with a fake key) in each place.
``SiteServer`` serves it on 127.0.0.1 with the endpoints a crawler must handle:
robots.txt disallowing a path, redirects in and out of scope, a slow answer, a huge
answer, an endless chain of pages and a loop; every request is logged.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import os
import pickle
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.sdk import blob_url, new_key

SITE_DIR = Path(__file__).resolve().parent / "site"
ESBUILD = SITE_DIR / "node_modules" / ".bin" / "esbuild"
HUGE_BYTES = 20 * 1024 * 1024
SLOW_SECONDS = 3.0


def token(account: str) -> str:
    """A real service SAS URL for ``account`` (fake key), read only, until 2030."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    sas = generate_blob_sas(
        account, "media", "clip.mp4", account_key=new_key(),
        permission=BlobSasPermissions(read=True), expiry=datetime(2030, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    return blob_url(account, "media", "clip.mp4", sas)


# each place on the site holds its own token, named by its storage account
PLACES = ("ksindex", "ksabout", "ksupload", "ksplayer", "kscomment", "kswidget", "ksconfig",
          "kscss", "kssrcset", "ksembed", "kssitemap", "ksredirect", "ksdatauri", "kshuge",
          "ksprivate", "ksother", "ksoutside", "ksslow", "ksdeep", "ksbroken")  # fmt: skip


def esbuild() -> Path:
    """The pinned esbuild, installed with ``npm ci`` when missing."""
    if not ESBUILD.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(f"npm not found: run npm ci --prefix {SITE_DIR}")
        subprocess.run([npm, "ci", "--prefix", str(SITE_DIR), "--no-audit", "--no-fund"],
                       check=True, capture_output=True)  # fmt: skip
    return ESBUILD


class MaliciousPickle:
    """Unpickling it would run a shell command (the model scanner must say so)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo owned",))


def build_site(root: Path, other: str) -> dict[str, str]:
    """Write the site under ``root`` (``other``: the out-of-scope origin it links to);
    return the token of each place."""
    tokens = {place: token(place) for place in PLACES}
    src = root / "src"
    www = root / "www"
    for d in (src, www / "assets", www / "img", www / "api", www / "private", www / "moved",
              www / "models"):  # fmt: skip
        d.mkdir(parents=True, exist_ok=True)
    (src / "main.js").write_text(
        'import { upload } from "./upload.js";\n'
        f"// staging bucket, do not ship: {tokens['kscomment']}\n"
        "export async function start() {\n"
        '  const config = await fetch("/api/config.json").then((r) => r.json());\n'
        '  document.querySelector("#play").onclick = () =>\n'
        '    import("./player.js").then((m) => m.play(config));\n'
        '  document.querySelector("#file").onchange = (e) => upload(e.target.files[0]);\n'
        "}\n"
        "start();\n"
    )
    (src / "upload.js").write_text(
        "export function upload(file) {\n"
        f'  const target = "{tokens["ksupload"]}";\n'
        '  return fetch(target, { method: "PUT", body: file });\n'
        "}\n"
    )
    (src / "player.js").write_text(
        "export function play(config) {\n"
        "  const video = document.createElement('video');\n"
        f'  video.src = config.cdn || "{tokens["ksplayer"]}";\n'
        "  document.body.append(video);\n"
        "}\n"
    )
    (src / "widget.js").write_text(
        "const media = {\n"
        f'  trailer: "{tokens["kswidget"]}",\n'
        "};\n"
        "window.widget = () => media.trailer;\n"
    )
    tool = str(esbuild())
    subprocess.run([tool, str(src / "main.js"), "--bundle", "--splitting", "--format=esm",
                    "--minify", "--sourcemap", f"--outdir={www / 'assets'}",
                    "--chunk-names=chunks/[name]-[hash]"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([tool, str(src / "widget.js"), "--bundle", "--minify", "--sourcemap",
                    "--sources-content=false", f"--outfile={www / 'assets' / 'widget.js'}"],
                   check=True, capture_output=True)  # fmt: skip
    data_uri = base64.b64encode(f"poster={tokens['ksdatauri']}".encode()).decode()
    (www / "index.html").write_text(f"""<!doctype html>
<html><head><title>Media site</title>
<link rel="stylesheet" href="/assets/style.css">
<script type="module" src="/assets/main.js"></script>
<script src="/assets/widget.js"></script>
</head><body>
<!-- {tokens['ksindex']} -->
<a href="/about.html">About</a> <a href="/private/keys.html">Keys</a>
<a href="/redirect-in">moved</a> <a href="/redirect-out">partner</a>
<a href="/slow">slow</a> <a href="/huge.txt">dump</a> <a href="/chain/1.html">archive</a>
<a href="{other}/other.html">elsewhere</a> <a href="/models/model.pkl">weights</a>
<iframe src="/embed.html"></iframe>
<img srcset="/img/hero-1x.txt 1x, /img/hero-2x.txt 2x" alt="">
<img src="data:text/plain;base64,{data_uri}" alt="">
<button id="play">play</button><input id="file" type="file">
</body></html>
""")
    (www / "about.html").write_text(f"<html><body><p>CDN: {tokens['ksabout']}</p>"
                                    '<a href="/">home</a></body></html>')  # fmt: skip
    (www / "assets" / "style.css").write_text(
        "body { background: url(/img/bg.svg) no-repeat; }\n"
    )
    (www / "img" / "bg.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {tokens["kscss"]} --></svg>'
    )
    (www / "img" / "hero-1x.txt").write_text("plain\n")
    (www / "img" / "hero-2x.txt").write_text(f"hero {tokens['kssrcset']}\n")
    (www / "embed.html").write_text(f"<html><body><video src=\"{tokens['ksembed']}\"></video>"
                                    "</body></html>")  # fmt: skip
    (www / "hidden.html").write_text(f"<html><body>{tokens['kssitemap']}</body></html>")
    (www / "api" / "config.json").write_text(f'{{"cdn": "{tokens["ksconfig"]}"}}')
    (www / "private" / "keys.html").write_text(f"<html>{tokens['ksprivate']}</html>")
    (www / "moved" / "target.html").write_text(f"<html>{tokens['ksredirect']}</html>")
    (www / "models" / "model.pkl").write_bytes(pickle.dumps(MaliciousPickle()))
    return tokens


class SiteServer:
    """The site on 127.0.0.1 (a free port), in a thread; ``log`` lists each request's
    path as received, ``agents`` its User-Agent."""

    def __init__(self, www: Path | None, tokens: dict[str, str], other: str = "") -> None:
        self.www = www
        self.tokens = tokens
        self.other = other
        self.log: list[str] = []
        self.agents: list[str] = []
        self.encodings: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.log.append(self.path)
                server.agents.append(self.headers.get("User-Agent", ""))
                server.encodings.append(self.headers.get("Accept-Encoding", ""))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.answer(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SiteServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if self.www is None:  # the out-of-scope origin
            name = "ksoutside" if path == "/redirected.html" else "ksother"
            return _send(h, 200, f"<html>{self.tokens[name]}</html>".encode(), "text/html")
        if path == "/robots.txt":
            body = f"User-agent: *\nDisallow: /private/\nSitemap: {self.url}/sitemap.xml\n"
            return _send(h, 200, body.encode(), "text/plain")
        if path == "/sitemap.xml":
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.'
                    f'sitemaps.org/schemas/sitemap/0.9"><url><loc>{self.url}/hidden.html</loc>'
                    "</url></urlset>")  # fmt: skip
            return _send(h, 200, body.encode(), "application/xml")
        if path == "/redirect-in":
            return _send(h, 302, b"", "text/plain", {"Location": "/moved/target.html"})
        if path == "/redirect-out":
            return _send(h, 302, b"", "text/plain", {"Location": f"{self.other}/redirected.html"})
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
            return _send(h, 200, f"<html>{self.tokens['ksslow']}</html>".encode(), "text/html")
        if path == "/broken/app.js":  # hostile: a map that is no JSON, a page of junk
            body = (f'var u="{self.tokens["ksbroken"]}";\n<a href="\x00\udcff:/%%">'
                    "<![CDATA[<script src=//[::1>\n//# sourceMappingURL=app.js.map\n")
            return _send(h, 200, body.encode("utf-8", "surrogateescape"), "text/javascript")
        if path == "/broken/app.js.map":
            return _send(h, 200, b'{"version": 3, "sources": [', "application/json")
        if path == "/huge.txt":
            return _huge(h, self.tokens["kshuge"])
        if (m := re.fullmatch(r"/chain/(\d+)\.html", path)) is not None:
            n = int(m.group(1))  # an endless chain, and a loop back to its start
            extra = self.tokens["ksdeep"] if n == 6 else ""
            body = f'<a href="/chain/{n + 1}.html">next</a> <a href="/chain/1.html">1</a>{extra}'
            return _send(h, 200, body.encode(), "text/html")
        file = (self.www / path.lstrip("/")).resolve()
        if path == "/":
            file = self.www / "index.html"
        if not file.is_file() or self.www.resolve() not in file.parents:
            return _send(h, 404, b"not found", "text/plain")
        body = file.read_bytes()
        headers: dict[str, str] = {}
        if "/chunks/" in path and path.endswith(".js"):  # the map named by a header instead
            body = re.sub(rb"\n//# sourceMappingURL=\S+\n?$", b"\n", body)
            headers["SourceMap"] = file.name + ".map"
        if path == "/about.html" and "gzip" in (h.headers.get("Accept-Encoding") or ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return _send(h, 200, body, _type(file.suffix), headers)


def _type(suffix: str) -> str:
    types = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
             ".json": "application/json", ".svg": "image/svg+xml", ".map": "application/json",
             ".pkl": "application/octet-stream"}  # fmt: skip
    return types.get(suffix, "text/plain")


def _send(
    h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
    headers: dict[str, str] | None = None,
) -> None:  # fmt: skip
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def _huge(h: BaseHTTPRequestHandler, secret: str) -> None:
    """A 20 MiB text answer whose token is in its first line."""
    first = f"export {secret}\n".encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Content-Length", str(HUGE_BYTES))
    h.end_headers()
    h.wfile.write(first)
    line = b"x" * 1023 + b"\n"
    left = HUGE_BYTES - len(first)
    while left > 0:
        chunk = (line * 64)[:left]
        h.wfile.write(chunk)
        left -= len(chunk)


@dataclass
class CrawlSite:
    """The running site, the out-of-scope origin and the token of each place."""

    site: SiteServer
    other: SiteServer
    tokens: dict[str, str]

    def clear(self) -> None:
        """Forget the requests logged so far (each test reads its own)."""
        for server in (self.site, self.other):
            server.log.clear()
            server.agents.clear()
            server.encodings.clear()
