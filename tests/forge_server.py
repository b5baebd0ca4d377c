"""A forge API on loopback that replays the documented response shapes of GitHub's
``GET /orgs/{org}/repos`` / ``/users/{user}/repos`` and GitLab's ``GET
/groups/{id}/projects``: pages linked by a ``Link`` header, ``X-RateLimit-*`` (GitHub)
and ``RateLimit-*`` (GitLab) headers, a 403 secondary rate limit with ``Retry-After``
(and a 429 for GitLab). It also serves bare repositories over git's "dumb" HTTP
protocol (static files after ``git update-server-info``), so that the listed clone
URLs can be cloned."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Forge:
    """What the server answers and what it was asked."""

    pages: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)  # path → pages
    # path?page=N → one refusal before the page: (status, headers, body)
    refusals: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # path?page=N → extra
    next_host: str | None = None  # a Link to another host (hostile)
    repos: Path | None = None  # bare repositories served under /git/
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


def _handler(forge: Forge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith("/git/") and forge.repos is not None:
                return self._file(forge.repos / parts.path[len("/git/"):])
            forge.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            page = int(parse_qs(parts.query).get("page", ["1"])[0])
            key = f"{parts.path}?page={page}"
            if key in forge.refusals:
                status, headers, body = forge.refusals.pop(key)
                return self._send(status, headers, body)
            pages = forge.pages.get(parts.path)
            if pages is None:
                return self._send(404, {}, b'{"message": "Not Found"}')
            headers = dict(forge.headers.get(key, {}))
            links = []
            host = forge.next_host or forge.url
            if page < len(pages):
                links.append(f'<{host}{parts.path}?per_page=100&page={page + 1}>; rel="next"')
            links.append(f'<{forge.url}{parts.path}?per_page=100&page={len(pages)}>; rel="last"')
            headers["Link"] = ", ".join(links)
            self._send(200, headers, json.dumps(pages[page - 1]).encode())

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _file(self, path: Path) -> None:
            if ".." in path.parts or not path.is_file():
                return self._send(404, {}, b"")
            self._send(200, {}, path.read_bytes())

    return Handler


@contextmanager
def forge_server(forge: Forge) -> Iterator[Forge]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(forge))
    forge.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield forge
    finally:
        server.shutdown()
        server.server_close()
