"""The notifier contract: ``wants`` (the alert's severity against the destination's
``min-severity``) and ``send`` (delivered, or :class:`DeliveryError`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from keyscope.model import Severity
from keyscope.redact import mask
from keyscope.verify.guard import InternalHost

Payload = Mapping[str, Any]


class DeliveryError(Exception):
    """An alert was not delivered. ``reason`` never holds a secret (masked, and never
    the destination's URL, which may be one); ``retryable``: worth sending again later
    (the receiver is down, slow, rate-limiting or answering 5xx), not when it refused
    the alert or keyscope refused the destination."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.reason = mask(reason)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, when the receiver said (Retry-After)
        super().__init__(self.reason)


@dataclass(frozen=True)
class NotifyOptions:
    """How alerts are sent: the guard of --verify (``allow_internal``), a timeout per
    connection and per answer, and the least time between two requests to one host."""

    allow_internal: bool | tuple[InternalHost, ...] = False
    timeout: float = 10.0
    interval: float = 1.0  # Slack allows about one message a second per webhook


class Notifier(ABC):
    """One destination of alerts."""

    kind: ClassVar[str]

    def __init__(self, name: str, min_severity: Severity) -> None:
        self.name = name
        self.min_severity = min_severity

    def wants(self, payload: Payload) -> bool:
        """Is the alert at or above this destination's ``min-severity``?"""
        try:
            return Severity.parse(str(payload.get("severity", ""))) >= self.min_severity
        except ValueError:
            return True  # an unknown label: better sent than lost

    @abstractmethod
    def send(self, payload: Payload) -> None:
        """Deliver one alert or raise :class:`DeliveryError`."""
