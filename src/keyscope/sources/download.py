"""Files named by an http(s) URL: a web archive (``.warc``, ``.warc.gz``) or an
artifact keyscope unpacks (``.zip``, ``.jar``, ``.apk``, ``.whl``, ``.tar.gz`` …),
downloaded, not cloned, then scanned as the same file on disk would be, its
locations showing the URL (without credentials, its query shown as ``?…``).

The download streams to a private temporary folder under the scan's cache
(``downloads/``), removed when the scan ends. It is bounded: at most
``--download-limit`` bytes (a larger ``Content-Length`` is refused before a byte is
written; a body that runs past the limit is cut off and deleted), a connect and a
read timeout, and a total time. Only http and https, redirects followed (at most
``MAX_REDIRECTS``) only to http(s). Nothing from the environment is sent: no proxy,
no ``.netrc``; credentials written in the URL itself (``https://user:pw@host/…``)
go as Basic authentication to that URL's own scheme, host and port only. A download
that fails (an HTTP status, a timeout, too large) makes the URL a skipped target
with the reason; the scan goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from keyscope.model import Location, RawFinding
from keyscope.sources.files import FilesSource
from keyscope.sources.interface import Batch, BlobScan, Skipped, Source, SourceOptions, Unit
from keyscope.sources.remote import split_credentials

if TYPE_CHECKING:  # http.client and ssl are loaded by a download only
    import http.client

DEFAULT_DOWNLOAD_LIMIT = 4 << 30  # a Common Crawl WARC file is about 1 GiB
CONNECT_SECONDS = 30.0
READ_SECONDS = 60.0  # the longest silence between two reads
TOTAL_SECONDS = 3600.0
MAX_REDIRECTS = 5
CHUNK = 1 << 20
FREE_MARGIN = 256 << 20  # disk space left free for the scan itself
SUFFIXES = (
    ".warc", ".warc.gz",
    ".zip", ".jar", ".war", ".ear", ".aar", ".apk", ".aab", ".ipa", ".xapk", ".apks",
    ".whl", ".egg", ".nupkg", ".vsix", ".xpi", ".crx", ".gem", ".deb", ".7z",
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz",
)  # fmt: skip
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class DownloadError(Exception):
    """Why a URL could not be downloaded (no credentials in the message)."""


def is_download(target: str) -> bool:
    """Is ``target`` an http(s) URL of a file to download (by its path's suffix)?"""
    parts = urlsplit(target)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and parts.path.lower().endswith(SUFFIXES)
    )


def shown_url(url: str) -> str:
    """The URL as reports show it: without credentials, and without its query (a
    signed URL's signature is a secret), shown as ``?…``."""
    parts = urlsplit(split_credentials(url)[0])
    return parts._replace(query="…" if parts.query else "", fragment="").geturl()


def download(url: str, folder: Path, limit: int) -> Path:
    """Stream ``url`` into a new private folder under ``folder``; the file's path.
    Raises :class:`DownloadError` (nothing is left behind then)."""
    bare, credentials = split_credentials(url)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    where = Path(tempfile.mkdtemp(dir=folder, prefix="download-"))
    target = where / _file_name(bare)
    try:
        _fetch(bare, credentials, target, limit)
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise
    return target


def _file_name(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return _SAFE_NAME.sub("_", name)[-120:].lstrip(".") or "download"


def _fetch(url: str, credentials: str | None, target: Path, limit: int) -> None:
    import http.client

    origin = urlsplit(url)[:2]
    deadline = time.monotonic() + TOTAL_SECONDS
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadError(f"redirected to a URL that is not http(s) ({parts.scheme}:)")
        auth = credentials if parts[:2] == origin else None
        try:
            connection = _connect(parts.scheme, parts.hostname, parts.port)
        except ValueError:  # a port that is no number
            raise DownloadError("not a valid URL") from None
        try:
            response = _request(connection, parts.path or "/", parts.query, auth)
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise DownloadError(f"HTTP {response.status} without a Location")
                current = urljoin(current, location.strip())
                continue
            if response.status != 200:
                raise DownloadError(f"HTTP {response.status} {response.reason[:80]}".strip())
            _save(response, target, limit, deadline)
            return
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(_reason(exc)) from None
        finally:
            connection.close()
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects")


def _connect(scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
    import http.client
    import ssl

    if scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(host, port, timeout=CONNECT_SECONDS, context=context)
    return http.client.HTTPConnection(host, port, timeout=CONNECT_SECONDS)


def _request(
    connection: http.client.HTTPConnection, path: str, query: str, auth: str | None
) -> http.client.HTTPResponse:
    import base64

    connection.connect()
    assert connection.sock is not None
    connection.sock.settimeout(READ_SECONDS)
    headers = {"User-Agent": "keyscope", "Accept-Encoding": "identity"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    connection.request("GET", path + (f"?{query}" if query else ""), headers=headers)
    return connection.getresponse()


def _save(response: http.client.HTTPResponse, target: Path, limit: int, deadline: float) -> None:
    length = response.getheader("Content-Length", "")
    declared = int(length) if length.strip().isdigit() else None
    if declared is not None and declared > limit:
        raise DownloadError(f"larger than --download-limit ({declared} > {limit} bytes)")
    free = shutil.disk_usage(target.parent).free
    if (declared or 0) + FREE_MARGIN > free:
        raise DownloadError(f"not enough free disk space ({free} bytes free)")
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := response.read1(CHUNK):
            written += len(chunk)
            if written > limit:
                raise DownloadError(f"larger than --download-limit ({limit} bytes): cut off")
            if time.monotonic() > deadline:
                raise DownloadError(f"took longer than {TOTAL_SECONDS:.0f} s")
            out.write(chunk)
    if declared is not None and written != declared:
        raise DownloadError(f"the body ended after {written} of {declared} bytes")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


class DownloadSource(Source):
    """http(s) URLs of web archives and artifacts: downloaded when the scan plans its
    work, then read by a files source of their own; reports show the URL."""

    name = "download"

    def __init__(self, options: SourceOptions, cache: Path) -> None:
        super().__init__(options)
        self.cache = cache
        self._urls: list[str] = []
        self._files = FilesSource(options)
        self._shown: dict[str, str] = {}  # downloaded file → the URL shown

    def claim(self, root: str) -> bool:
        if not is_download(root):
            return False
        self._urls.append(root)
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        if not self._urls:
            return
        for url in self._urls:
            try:
                path = download(url, self.cache / "downloads", self.options.download_limit)
            except DownloadError as exc:
                reason = f"could not be downloaded: {exc}"
                skipped.append(Skipped(shown_url(url), reason))
                continue
            self._shown[str(path)] = shown_url(url)
            self._files.claim(str(path))
        if not self._shown:
            return
        planned: list[Skipped] = []
        try:
            yield from self._files.units(planned, jobs)
        finally:
            skipped.extend(replace(s, path=self._url_of(s.path)) for s in planned)

    def absorb(self, unit: Unit, batch: Batch) -> Batch:
        return self._named(self._files.absorb(unit, batch))

    def finish(self, scan: BlobScan) -> Batch:
        batch = self._named(self._files.finish(scan))
        for path in self._shown:
            shutil.rmtree(Path(path).parent, ignore_errors=True)
        return batch

    def _named(self, batch: Batch) -> Batch:
        """``batch`` with the downloaded files' paths replaced by their URLs."""
        if not self._shown:
            return batch
        return replace(
            batch,
            findings=[_renamed(f, self._url_of(f.location.path)) for f in batch.findings],
            skipped=[replace(s, path=self._url_of(s.path)) for s in batch.skipped],
            model_findings=[replace(m, path=self._url_of(m.path)) for m in batch.model_findings],
        )

    def _url_of(self, path: str) -> str:
        return self._shown.get(path, path)


def _renamed(finding: RawFinding, path: str) -> RawFinding:
    location: Location = replace(finding.location, path=path)
    return replace(finding, location=location)
