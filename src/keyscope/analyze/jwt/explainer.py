"""From captured values or pasted text to explained JWTs: who issued it, for whom and
which audience, which scopes, until when; an expired token is rated low. The signature
is never checked (it would need the issuer's key)."""

from __future__ import annotations

from datetime import datetime

from keyscope.analyze.aws.policy import RULES as AWS_RULES
from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.jwt.claims import JWT, Jwt, decode
from keyscope.analyze.policy import DEFAULT_POLICY, Policy, rate
from keyscope.analyze.timefmt import duration, instant, iso
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

PROVIDER = "jwt"
# code: (default severity, what it means) — the README documents this table.
RULES: dict[str, tuple[Severity, str]] = {
    "bearer-token": (
        Severity.HIGH,
        "a JWT is a bearer token: whoever holds it acts as its subject for its audience "
        "until it expires",
    ),
    "no-expiry": (Severity.HIGH, "no exp claim: accepted for as long as its issuer's key is"),
    "unsigned-jwt": (
        Severity.LOW,
        "alg none: only a verifier that skips signatures accepts it",
    ),
    **{code: AWS_RULES[code] for code in ("live", "expired")},
}
CAPS = {"expired": Severity.LOW, "unsigned-jwt": Severity.LOW}
_NOT_CHECKED = SignatureCheck(
    "not-checked", "signature not checked: that needs the issuer's public key (JWKS) or secret"
)
_SCOPES = ("scp", "scope", "roles", "permissions", "groups")


def jwt_candidates(value: str, now: datetime,
                   policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A captured JWT."""
    try:
        token = decode(value)
    except ParseError as exc:
        return [Rejected(str(exc))]
    return [Candidate(explain_jwt(token, now, policy), token.token, token)]


def read_text(text: str, now: datetime, policy: Policy) -> list[tuple[Explanation, Jwt]]:
    """Every JWT in pasted text (``keyscope explain``)."""
    out: list[tuple[Explanation, Jwt]] = []
    errors: list[str] = []
    for m in JWT.finditer(text):
        for c in jwt_candidates(m.group("jwt"), now, policy):
            if isinstance(c, Rejected):
                errors.append(c.reason)
            else:
                out.append((c.explanation, c.credential))  # type: ignore[arg-type]
    if not out:
        raise ParseError(errors[0] if errors else "no JWT found")
    return out


def _validity(token: Jwt, now: datetime) -> Validity:
    exp, nbf, iat = token.time("exp"), token.time("nbf"), token.time("iat")
    start = nbf or iat
    lifetime = int((exp - start).total_seconds()) if exp and start else None
    if exp is None:
        return Validity(start=start, expiry=None, effective_expiry=None,
                        lifetime_seconds=None, remaining_seconds=None, expired=False,
                        not_yet_valid=bool(nbf and nbf > now),
                        summary="no expiry (no exp claim): valid as long as its issuer's key")
    remaining = int((exp - now).total_seconds())
    expired = remaining <= 0
    when = f"until {instant(exp)}"
    summary = (f"expired {when} ({duration(remaining)} ago)" if expired
               else f"{when} ({duration(remaining)} left)")
    if lifetime is not None:
        summary += f"; issued for {duration(lifetime)}"
    return Validity(start=start, expiry=exp, effective_expiry=exp, lifetime_seconds=lifetime,
                    remaining_seconds=remaining, expired=expired,
                    not_yet_valid=bool(nbf and nbf > now), summary=summary)


def jwt_access(token: Jwt, now: datetime) -> Access:
    """What a JWT stands for: its issuer, subject, audience and scopes, until its exp."""
    iss, sub, aud = token.text("iss"), token.text("sub"), token.text("aud")
    scopes = next((token.text(n) for n in _SCOPES if token.text(n)), None)
    audience = f" at {aud}" if aud else " wherever its issuer is trusted"
    scope_text = f", with scopes {scopes}" if scopes else ""
    alg = str(token.header.get("alg"))
    return Access(
        provider=PROVIDER, kind="jwt",
        kind_label=f"JWT ({alg}) issued by {iss or 'an unnamed issuer'}",
        account=sub, account_note="the token's subject (sub)" if sub else "no sub claim",
        endpoint=iss, cloud=None, emulator=False, services=("all",),
        scope=Scope(level="principal", description=f"acts as {sub or 'its bearer'}{audience}"
                    f"{scope_text}"),
        permissions=scopes, capabilities=(), destructive=(), validity=_validity(token, now),
        network=NetworkLimits(ip_range=None, protocols=("https",),
                              summary="any IP address, unless its audience checks more"),
        revocation=Revocation(
            individually_revocable=False,
            summary="a JWT cannot be revoked by itself: end the session or revoke the refresh "
            "token at its issuer, or rotate the issuer's signing key (ends every token it signed)",
            steps=(
                RevocationStep(f"Sign the subject out, or revoke its sessions, at the issuer "
                               f"{iss or '(unnamed)'}"),
                RevocationStep("If the signing key itself leaked, rotate it (every token it "
                               "signed stops working)"),
            ),
            side_effects="the subject's other sessions may end too",
        ),
        details={"alg": alg, "kid": token.header.get("kid"), "typ": token.header.get("typ"),
                 "issuer": iss, "subject": sub, "audience": aud, "scopes": scopes,
                 "issued_at": iso(token.time("iat")), "not_before": iso(token.time("nbf")),
                 "expires_at": iso(token.time("exp")), "signed": token.signed,
                 "claims": sorted(token.claims)},
    )


def evaluate(
    access: Access, policy: Policy = DEFAULT_POLICY
) -> tuple[Severity, tuple[Reason, ...]]:
    v = access.validity
    hits = [("bearer-token", RULES["bearer-token"][1])]
    if v.expired:
        hits.append(("expired", v.summary))
    elif v.expiry is None:
        hits.append(("no-expiry", RULES["no-expiry"][1]))
    if str(access.details["alg"]).lower() == "none":
        hits.append(("unsigned-jwt", RULES["unsigned-jwt"][1]))
    if not v.expired:
        hits.append(("live", RULES["live"][1]))
    return rate(hits, policy, RULES, CAPS)


def explain_jwt(token: Jwt, now: datetime, policy: Policy = DEFAULT_POLICY) -> Explanation:
    access = jwt_access(token, now)
    severity, reasons = evaluate(access, policy)
    sentence = (f"This {access.kind_label} {access.scope.description}, "
                f"{access.validity.summary} (signature not checked); revoke: "
                f"{access.revocation.summary}.")
    head = token.token.split(".", 1)[0]
    return Explanation(
        sentence=sentence, access=access, severity=severity, reasons=reasons,
        log_fingerprints={"kid": str(token.header["kid"])} if token.header.get("kid") else {},
        signature=_NOT_CHECKED, redacted=f"{head}.…(redacted)",
        fingerprint=fingerprint("jwt", token.token),
        notes=("Signature not checked: the claims are read as written; a forged token "
               "reads the same.",),
    )
