"""The audit log of live checks: JSON lines, two per request.

A ``request`` line is written, and flushed, before anything of the request leaves the
machine (DNS lookup included); if it cannot be written, the request is not sent. A
``result`` line with the same ``id`` follows: sent or not, the outcome, the HTTP
status. URLs are the redacted ones; no secret or Authorization header is ever written.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLogError(Exception):
    """The audit log could not be written (the message says where and why)."""


class AuditLog:
    """Appends records to one JSON lines file; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._run = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)

    def request(self, fields: dict[str, Any]) -> str:
        """Record a request about to be sent; its id. AuditLogError if not written."""
        with self._lock:
            rid = f"{self._run}-{next(self._ids)}"
        self._write({"event": "request", "id": rid, **fields})
        return rid

    def result(self, rid: str, fields: dict[str, Any]) -> None:
        """Record what became of request ``rid`` (AuditLogError if not written)."""
        self._write({"event": "result", "id": rid, **fields})

    def _write(self, record: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"time": now, **record}, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # backslashreplace: a lone surrogate is written as its JSON escape
                with self.path.open("a", encoding="utf-8", errors="backslashreplace") as f:
                    f.write(line)
                    f.flush()
            except OSError as exc:
                reason = (exc.strerror or type(exc).__name__).lower()
                raise AuditLogError(
                    f"the audit log {self.path} cannot be written: {reason}"
                ) from None
