"""Web archives for the tests, written by warcio as Common Crawl's are: one gzip member
per record, each an HTTP 200 response with an HTML body."""

from __future__ import annotations

import io


def gzip_warc(records: list[tuple[str, bytes]]) -> bytes:
    """A ``.warc.gz`` of ``(URI, body)`` response records."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for uri, payload in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            uri, "response", payload=io.BytesIO(payload), http_headers=http))  # fmt: skip
    return buf.getvalue()
