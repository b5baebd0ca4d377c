"""One alert POSTed through ``verify/transport.py`` (the guard of ``--verify``: HTTPS,
plain HTTP only to loopback, internal addresses only with ``--allow-internal``, the
address checked is the one connected to, no redirects, no proxy, timeouts), and the
receiver's answer as success or :class:`DeliveryError`."""

from __future__ import annotations

import re
from abc import abstractmethod
from urllib.parse import urlsplit

from keyscope import __version__
from keyscope.model import Severity
from keyscope.notify.interface import DeliveryError, Notifier, NotifyOptions, Payload
from keyscope.verify.transport import NotSent, Request, Response, Transport, VerifyOptions

USER_AGENT = f"keyscope/{__version__} (alerts)"
JSON = {"Content-Type": "application/json"}
_TOKEN = re.compile(rb"[A-Za-z0-9_.-]{1,64}")  # Slack's error codes: invalid_payload, …


def transport(options: NotifyOptions) -> Transport:
    """A transport for alerts (its own rate limits, no audit log)."""
    return Transport(
        VerifyOptions(
            allow_internal=options.allow_internal,
            timeout=options.timeout,
            per_host_interval=options.interval,
            max_per_host=10_000,
        )
    )


def shown(url: str) -> str:
    """A destination as it may be shown: scheme and host only (a Slack or Teams URL's
    path and query are the credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def post(
    via: Transport, name: str, url: str, body: bytes, headers: dict[str, str]
) -> Response:
    """POST ``body``; a 2xx answer is returned, anything else raises."""
    request = Request(
        probe=f"alert to {name}",
        method="POST",
        url=url,
        shown_url=shown(url),
        headers=(("User-Agent", USER_AGENT), *headers.items()),
        body=body,
    )
    try:
        response = via.send(request)
    except NotSent as exc:
        # refused by keyscope's guard: sending again changes nothing
        raise DeliveryError(
            f"{name}: {exc.detail}", retryable=exc.status != "refused-by-keyscope"
        ) from None
    status = response.status
    if 200 <= status < 300:
        return response
    reason = f"{name}: the receiver answered HTTP {status}"
    code = response.body.strip()[:64]
    if code and _TOKEN.fullmatch(code):
        reason += f" ({code.decode()})"
    if 300 <= status < 400:
        reason += "; keyscope does not follow redirects"
    retryable = status in (408, 425, 429) or status >= 500
    raise DeliveryError(reason, retryable=retryable, retry_after=_retry_after(response))


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


class JsonPostNotifier(Notifier):
    """A destination that takes one JSON document per alert at a secret URL (Slack,
    Teams): subclasses render the body."""

    def __init__(self, name: str, min_severity: Severity, url: str, via: Transport) -> None:
        super().__init__(name, min_severity)
        self._url = url
        self._via = via

    @abstractmethod
    def body(self, payload: Payload) -> bytes:
        """The JSON document for one alert (checked and masked by the subclass)."""

    def send(self, payload: Payload) -> None:
        post(self._via, self.name, self._url, self.body(payload), JSON)
