"""GET requests through the guarded transport (``verify/transport.py``), for both planes.

The one place ``posture`` sends anything: every request is a GET (any other method is
refused here, before the transport sees it), each is recorded for the report's
read-only proof, and a 429 or 503 answer is retried after its ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from keyscope.posture.types import Sent
from keyscope.redact import mask
from keyscope.verify.transport import NotSent, Request, Response, Transport

READ_BYTES = 4 << 20  # an answer read at most (an ARM page of accounts, a container list)
RETRIES = 4  # throttled answers retried at most, per request
MAX_WAIT = 60.0  # seconds waited at most for one Retry-After
DEFAULT_WAIT = 5.0  # when a throttled answer names no Retry-After


class ReadError(Exception):
    """A GET that did not give an answer to use; ``reason`` holds no secret."""

    def __init__(self, reason: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code


class Reader:
    """Sends GETs, retries throttled ones, remembers what it sent."""

    def __init__(
        self,
        transport: Transport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retries: int = RETRIES,
    ) -> None:
        self.transport = transport
        self.sleep = sleep
        self.retries = retries
        self.sent: list[Sent] = []
        self.waited: list[float] = []  # each Retry-After honoured, in seconds

    def get(self, request: Request) -> Response:
        """The answer to one GET (any status but a throttled one); ReadError when none."""
        if request.method != "GET":
            raise ReadError(f"refused to send {request.method}: posture sends GET requests only")
        for attempt in range(self.retries + 1):
            try:
                response = self.transport.send(request)
            except NotSent as exc:
                self.sent.append(Sent("GET", request.shown_url, None))
                raise ReadError(mask(exc.detail)) from None
            self.sent.append(Sent("GET", request.shown_url, response.status))
            if response.status not in (429, 503) or attempt == self.retries:
                return response
            wait = retry_after(response.headers.get("retry-after"))
            self.waited.append(wait)
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped."""
    if not value:
        return DEFAULT_WAIT
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return DEFAULT_WAIT
    return max(0.0, min(when - (time.time() if now is None else now), MAX_WAIT))
