"""From captured values or pasted text to explained private keys: what a private key
unlocks (wherever its public half is trusted), how to find those places, and how to
retire it. Encrypted keys are rated low; public keys and certificates are never
captured."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.policy import DEFAULT_POLICY, Policy, rate
from keyscope.analyze.privatekeys.reader import PEM, PUTTY, PrivateKey, read_pem, read_putty
from keyscope.errors import ParseError
from keyscope.model import (
    Access,
    Explanation,
    NetworkLimits,
    Reason,
    Revocation,
    RevocationStep,
    Scope,
    Severity,
    SignatureCheck,
    Validity,
)
from keyscope.providers.interface import Candidate, Rejected

PROVIDER = "private-key"
# code: (default severity, what it means) — the README documents this table.
RULES: dict[str, tuple[Severity, str]] = {
    "private-key": (
        Severity.HIGH,
        "a private key signs and decrypts as its owner wherever its public key is trusted "
        "(SSH servers, TLS, code or token signing)",
    ),
    "encrypted-private-key": (
        Severity.LOW,
        "the key is encrypted with a passphrase: usable only once the passphrase is guessed "
        "(offline, at leisure)",
    ),
}
CAPS = {"encrypted-private-key": Severity.LOW}
_FORMATS = {
    "pkcs1": "PKCS#1 PEM", "sec1": "SEC1 PEM", "dsa": "PEM", "pkcs8": "PKCS#8 PEM",
    "pkcs8-encrypted": "encrypted PKCS#8 PEM", "openssh": "OpenSSH", "putty": "PuTTY .ppk",
}
_NO_SIGNATURE = SignatureCheck("not-checked", "a key is not a signature")
_GCP_KEY_FILE = ("private_key_id", "client_email")


def pem_candidates(value: str, context: Callable[[], str], now: datetime,
                   policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A captured PEM block (PKCS#1, SEC1, DSA, PKCS#8, OpenSSH)."""
    if all(name in context() for name in _GCP_KEY_FILE):
        return [Rejected("the private key of a service-account key file (its own rule)")]
    try:
        key = read_pem(value)
    except ParseError as exc:
        return [Rejected(str(exc))]
    return [Candidate(explain_key(key, policy), key.body, key)]


def putty_candidates(value: str, now: datetime,
                     policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A captured PuTTY key file."""
    try:
        key = read_putty(value)
    except ParseError as exc:
        return [Rejected(str(exc))]
    return [Candidate(explain_key(key, policy), key.body, key)]


def read_text(text: str, now: datetime, policy: Policy) -> list[tuple[Explanation, PrivateKey]]:
    """Every private key in pasted text (``keyscope explain``)."""
    out: list[tuple[Explanation, PrivateKey]] = []
    errors: list[str] = []
    for c in _pasted(text, now, policy):
        if isinstance(c, Rejected):
            errors.append(c.reason)
        else:
            out.append((c.explanation, c.credential))  # type: ignore[arg-type]
    if not out:
        raise ParseError(errors[0] if errors else "no private key found")
    return out


def _pasted(text: str, now: datetime, policy: Policy) -> Iterator[Candidate | Rejected]:
    for m in PEM.finditer(text):
        yield from pem_candidates(m.group(), lambda: text, now, policy)
    for m in PUTTY.finditer(text):
        yield from putty_candidates(m.group(), now, policy)


def key_access(key: PrivateKey) -> Access:
    """Where a private key works: wherever its public half is trusted."""
    size = f", {key.bits} bits" if key.bits else ""
    curve = f", {key.curve}" if key.curve else ""
    algorithm = "" if key.algorithm == "unknown" else key.algorithm.upper() + " "
    label = (f"{'encrypted ' if key.encrypted else ''}{algorithm}private key "
             f"({_FORMATS[key.format]}{size}{curve})")
    find = RevocationStep("Find where its public key is trusted: search authorized_keys, "
                          "GitHub/GitLab SSH and deploy keys, cloud instance metadata and "
                          "certificates for its fingerprint",
                          "ssh-keygen -l -f KEYFILE" if key.public_fingerprint else
                          "openssl pkey -in KEYFILE -pubout")
    steps = (
        find,
        RevocationStep("Remove that public key everywhere it is trusted, and revoke the "
                       "certificates issued for it"),
        RevocationStep("Generate a new key pair and deploy its public key instead",
                       "ssh-keygen -t ed25519"),
    )
    return Access(
        provider=PROVIDER,
        kind="encrypted-private-key" if key.encrypted else "private-key",
        kind_label=label,
        account=key.comment,
        account_note="the key's comment (often user@host)" if key.comment else
        "a private key does not name its owner",
        endpoint=None, cloud=None, emulator=False, services=("all",),
        scope=Scope(level="principal", description="signs and decrypts as whoever trusts its "
                    "public key: SSH logins (authorized_keys, deploy keys), TLS servers, code, "
                    "commit or token signing; which ones is not in the key"),
        permissions=None, capabilities=(), destructive=(),
        validity=Validity(start=None, expiry=None, effective_expiry=None, lifetime_seconds=None,
                          remaining_seconds=None, expired=False, not_yet_valid=False,
                          summary="a key does not expire: it works until its public key is "
                          "removed wherever it is trusted"),
        network=NetworkLimits(ip_range=None, protocols=(), summary="wherever its public key "
                              "is trusted"),
        revocation=Revocation(individually_revocable=True, summary="remove its public key "
                              "wherever it is trusted and replace the pair", steps=steps,
                              side_effects="every login, server or signature relying on it "
                              "must move to the new key"),
        details={"format": key.format, "algorithm": key.algorithm, "bits": key.bits,
                 "curve": key.curve, "encrypted": key.encrypted, "cipher": key.cipher,
                 "comment": key.comment, "public_key_fingerprint": key.public_fingerprint},
    )


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    hits = [("private-key", RULES["private-key"][1])]
    if access.details["encrypted"]:
        why = RULES["encrypted-private-key"][1]
        hits.append(("encrypted-private-key", f"encrypted ({access.details['cipher']}): {why}"))
    return rate(hits, policy, RULES, CAPS)


def explain_key(key: PrivateKey, policy: Policy = DEFAULT_POLICY) -> Explanation:
    access = key_access(key)
    severity, reasons = evaluate(access, policy)
    where = f" (public key {key.public_fingerprint})" if key.public_fingerprint else ""
    sentence = (f"This {access.kind_label}{where} {access.scope.description}; "
                f"{access.validity.summary}; revoke: {access.revocation.summary}.")
    notes = ["Signature not checked: nothing here is signed; the public key fingerprint is "
             "computed from the file, not looked up."]
    if key.encrypted:
        notes.append("Encrypted keys are rated low, not ignored: a weak passphrase falls to "
                     "an offline guess.")
    logs = {"public_key_fingerprint": key.public_fingerprint} if key.public_fingerprint else {}
    return Explanation(
        sentence=sentence, access=access, severity=severity, reasons=reasons,
        log_fingerprints=logs, signature=_NO_SIGNATURE,
        redacted=f"{access.kind_label}: {key.body[:4]}…(redacted)",
        fingerprint=fingerprint("private-key", key.body), notes=tuple(notes),
    )
