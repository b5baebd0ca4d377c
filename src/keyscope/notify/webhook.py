"""The generic webhook: the payload as JSON, signed.

Headers: ``X-Keyscope-Timestamp: <unix seconds>``, ``X-Keyscope-Signature:
sha256=<hex>`` (HMAC-SHA256, with the secret named by ``secret-env``, of the bytes
``<timestamp>.<body>``), ``X-Keyscope-Delivery`` (the same for every attempt at one
alert) and ``X-Keyscope-Event`` (the trigger). A receiver recomputes the HMAC over the
raw body it received, compares in constant time (:func:`signature_valid`), and rejects
a timestamp more than five minutes away from its clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from keyscope.model import Severity
from keyscope.notify.http import post
from keyscope.notify.interface import Notifier, Payload
from keyscope.notify.payload import checked, delivery_id
from keyscope.verify.transport import Transport

TOLERANCE = 300  # seconds a receiver should accept between the timestamp and its clock


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "timestamp.body">``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def signature_valid(
    secret: bytes, timestamp: str, body: bytes, header: str, now: float | None = None
) -> bool:
    """A receiver's check: the header matches the body and the timestamp is recent."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookNotifier(Notifier):
    kind = "webhook"

    def __init__(
        self, name: str, min_severity: Severity, url: str, secret: bytes, via: Transport
    ) -> None:
        super().__init__(name, min_severity)
        self._url = url
        self._secret = secret
        self._via = via

    def send(self, payload: Payload) -> None:
        p = checked(payload)
        body = json.dumps(p, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Keyscope-Timestamp": stamp,
            "X-Keyscope-Signature": signature(self._secret, stamp, body),
            "X-Keyscope-Delivery": delivery_id(p),
            "X-Keyscope-Event": str(p["trigger"]),
        }
        post(self._via, self.name, self._url, body, headers)
