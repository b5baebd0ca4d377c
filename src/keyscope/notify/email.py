"""E-mail over SMTP: STARTTLS (or TLS from the first byte, ``tls = true``), then AUTH
with the password named by ``password-env``; a plain-text message to the configured
``to`` and, with ``to-owners``, to the owners' addresses (only those in
``owner-domains`` when it is given: an owner's address comes from the scanned
repository). The server's address passes the same guard as ``--verify``; the
certificate is checked (``ca-file`` adds a private CA); without TLS, mail goes only
to a loopback address."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from keyscope.model import Severity
from keyscope.notify.interface import DeliveryError, Notifier, Payload
from keyscope.notify.payload import checked, owner_addresses, plain_text, title
from keyscope.verify.transport import NotSent, Transport


class _GuardedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` connected to the address the guard checked, not to whatever
    the name resolves to a moment later; TLS still verifies the host name."""

    def __init__(self, address: str, timeout: float) -> None:
        self._address = address
        super().__init__(timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self._host = host  # the name STARTTLS checks the certificate against
        return socket.create_connection((self._address, port), timeout)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(self, address: str, timeout: float, context: ssl.SSLContext) -> None:
        self._address = address
        super().__init__(timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._address, port), timeout)
        return self.context.wrap_socket(raw, server_hostname=host)


class EmailNotifier(Notifier):
    kind = "email"

    def __init__(
        self,
        name: str,
        min_severity: Severity,
        *,
        host: str,
        port: int,
        security: str,  # starttls | tls | none
        username: str | None,
        password: str | None,
        sender: str,
        to: tuple[str, ...],
        to_owners: bool,
        owner_domains: tuple[str, ...],
        ca_file: str | None,
        via: Transport,
    ) -> None:
        super().__init__(name, min_severity)
        self.host, self.port, self.security = host, port, security
        self._username, self._password = username, password
        self.sender, self.to = sender, to
        self.to_owners, self.owner_domains = to_owners, owner_domains
        self._ca_file = ca_file
        self._via = via

    def recipients(self, payload: Payload) -> list[str]:
        """The configured ``to``, then the owners' addresses (if ``to-owners``)."""
        out = list(self.to)
        if self.to_owners:
            for address in owner_addresses(payload):
                domain = address.rsplit("@", 1)[1].lower()
                allowed = not self.owner_domains or domain in self.owner_domains
                if allowed and address.lower() not in (a.lower() for a in out):
                    out.append(address)
        return out

    def message(self, payload: Payload) -> EmailMessage:
        p = checked(payload)
        msg = EmailMessage()
        msg["Subject"] = title(p)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients(p))
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain="keyscope.invalid")
        msg["X-Keyscope-Fingerprint"] = str(p["fingerprint"])
        msg.set_content(plain_text(p))
        return msg

    def send(self, payload: Payload) -> None:
        msg = self.message(payload)
        to = self.recipients(checked(payload))
        if not to:
            raise DeliveryError(f"{self.name}: no recipient", retryable=False)
        try:
            addresses = self._via.addresses(self.host, self.port, plain=self.security == "none")
        except NotSent as exc:
            detail = exc.detail
            if self.security == "none":
                detail = "mail without TLS goes only to a loopback address"
            raise DeliveryError(
                f"{self.name}: {detail}", retryable=exc.status != "refused-by-keyscope"
            ) from None
        try:
            self._deliver(addresses[0], msg, to)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{self.name}: the server refused the login (SMTP {exc.smtp_code})",
                retryable=False,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"{self.name}: {self.host} does not offer STARTTLS (or AUTH); keyscope does "
                "not send over an unencrypted connection",
                retryable=False,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise DeliveryError(
                f"{self.name}: every recipient was refused (SMTP {codes})",
                retryable=all(400 <= c < 500 for c in codes),
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{self.name}: the server answered SMTP {exc.smtp_code}",
                retryable=400 <= exc.smtp_code < 500,
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"{self.name}: TLS with {self.host} failed ({exc.reason})", retryable=False
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            # timeouts, refused connections, a server that hung up: try again later
            raise DeliveryError(
                f"{self.name}: {self.host}:{self.port}: {type(exc).__name__}", retryable=True
            ) from None

    def _deliver(self, address: str, msg: EmailMessage, to: list[str]) -> None:
        context = ssl.create_default_context(cafile=self._ca_file)
        timeout = self._via.options.timeout
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = _GuardedSMTPSSL(address, timeout, context)
        else:
            smtp = _GuardedSMTP(address, timeout)
        with smtp:
            smtp.connect(self.host, self.port)
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._username is not None:
                smtp.login(self._username, self._password or "")
            smtp.send_message(msg, from_addr=self.sender, to_addrs=to)
