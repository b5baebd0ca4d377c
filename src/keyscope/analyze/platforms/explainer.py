"""From captured values or pasted text to explained platform tokens (Hugging Face,
OpenAI, Anthropic, Weights & Biases, Kaggle, Replicate, Databricks, GitHub, GitLab,
Slack) and chat webhook URLs (Slack, Teams). Stand-ins and bad checksums are dropped,
never reported."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime

from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.platforms.policy import evaluate
from keyscope.analyze.platforms.table import KINDS, TokenKind
from keyscope.analyze.platforms.tokens import (
    FLOW_WEBHOOK,
    SLACK_WEBHOOK,
    TEAMS_WEBHOOK,
    PlatformToken,
    placeholder,
    read_token,
    read_webhook,
)
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.errors import ParseError
from keyscope.model import (
    Access,
    Explanation,
    NetworkLimits,
    Revocation,
    RevocationStep,
    Scope,
    SignatureCheck,
    Validity,
)
from keyscope.providers.interface import Candidate, Rejected

# Every prefixed token shape, for pasted text (the rules anchor the scan path).
TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:hf_[A-Za-z]{34}|api_org_[A-Za-z]{34}|sk-ant-(?:api03|admin01)-"
    r"[A-Za-z0-9_-]{93}AA|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}T3BlbkFJ"
    r"[A-Za-z0-9_-]{20,200}|r8_[A-Za-z0-9_-]{37}|dapi[0-9a-f]{32}(?:-[0-9])?|KGAT_[0-9a-f]{32}"
    r"|wandb_v1_[A-Za-z0-9]{27}_[A-Za-z0-9]{49}"
    r"|gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"
    r"|(?:glpat|gldt|glrt|glptt|glft|glimt|glagent|gloas|glsoat|glcbt)-[A-Za-z0-9_-]{20,300}"
    r"(?:(?:\.[0-9a-z]{2})?\.[0-9a-z]{9})?|GR1348941[A-Za-z0-9_-]{20}"
    r"|xox[bpar]-[0-9A-Za-z-]{20,}|xoxe(?:\.xox[bp])?-[0-9]-[A-Za-z0-9]{140,170}"
    r"|xapp-[0-9]-[A-Z0-9-]{20,}[a-f0-9]{64})(?![A-Za-z0-9_-])"
)
# A W&B key after its label (environment, wandb.login, a .netrc entry for api.wandb.ai).
WANDB = re.compile(
    r"(?i)(?:wandb[_-]?api[_-]?key|wandb\.login\(\s*key|api\.wandb\.ai\s+login\s+\S{1,64}"
    r"\s+password)[\"']?\s*[=:]?\s*[\"']?(?P<key>[0-9a-f]{40})(?![0-9a-zA-Z])"
)
# A Kaggle key: kaggle.json's "key" or KAGGLE_KEY; the username is read nearby.
KAGGLE = re.compile(
    r"(?i)(?:\"key\"\s*:\s*\"|kaggle_key[\"']?\s*[=:]\s*[\"']?)(?P<key>[0-9a-f]{32})(?![0-9a-z])"
)
_KAGGLE_USER = re.compile(
    r"(?i)(?:\"username\"\s*:\s*\"|kaggle_username[\"']?\s*[=:]\s*[\"']?)(?P<user>[A-Za-z0-9_-]{1,50})"
)
_DATABRICKS_HOST = re.compile(
    r"(?i)(?P<host>[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})?\.(?:cloud\.databricks\.com|"
    r"azuredatabricks\.net|gcp\.databricks\.com))"
)
_PREFIX = re.compile(
    r"sk-(?:proj|svcacct|admin|ant)-|github_pat_|api_org_|xoxe\.xox[bp]-|wandb_v1_|KGAT_"
    r"|[a-z]+[_-]|[A-Za-z0-9]{4}"
)
_NOT_SIGNED = SignatureCheck("not-checked", "a token is not a signature")
_ANY_IP = "any IP address, unless the platform's settings restrict it"


def token_candidates(value: str, context: Callable[[], str], now: datetime,
                     policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A captured prefixed token."""
    token = read_token(value)
    if isinstance(token, str):
        return [Rejected(token)]
    if token.kind == "databricks-token":
        host = _DATABRICKS_HOST.search(context())
        if host:
            token = PlatformToken(token.kind, token.token,
                                  (*token.facts, ("workspace", host.group("host").lower())))
    return [_candidate(token, policy)]


def webhook_candidates(value: str, now: datetime,
                       policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A captured Slack or Teams incoming-webhook URL."""
    hook = read_webhook(value)
    if isinstance(hook, str):
        return [Rejected(hook)]
    return [_candidate(hook, policy)]


def wandb_candidates(value: str, now: datetime,
                     policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A 40-hex W&B key (the rule captured it after its label)."""
    if re.fullmatch(r"[0-9a-f]{40}", value) is None:
        return [Rejected("not a W&B API key (40 hex digits)")]
    reason = placeholder(value)
    if reason:
        return [Rejected(reason)]
    return [_candidate(PlatformToken("wandb-api-key", value), policy)]


def kaggle_candidates(value: str, context: Callable[[], str], now: datetime,
                      policy: Policy = DEFAULT_POLICY) -> list[Candidate | Rejected]:
    """A 32-hex Kaggle key, reported only with its username beside it."""
    if re.fullmatch(r"[0-9a-f]{32}", value) is None:
        return [Rejected("not a Kaggle API key (32 hex digits)")]
    user = _KAGGLE_USER.search(context())
    if user is None:
        return [Rejected("32-hex key without a Kaggle username nearby")]
    reason = placeholder(value) or placeholder(user.group("user") * 2)
    if reason:
        return [Rejected(reason)]
    return [_candidate(PlatformToken("kaggle-api-key", value,
                                     (("username", user.group("user")),)), policy)]


def _candidate(token: PlatformToken, policy: Policy) -> Candidate:
    return Candidate(explain_token(token, policy), token.token, token)


def read_text(text: str, now: datetime, policy: Policy) -> list[tuple[Explanation, PlatformToken]]:
    """Every platform token and webhook URL in pasted text (``keyscope explain``)."""
    out: list[tuple[Explanation, PlatformToken]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for c in _pasted(text, now, policy):
        if isinstance(c, Rejected):
            errors.append(c.reason)
        elif c.explanation.fingerprint not in seen:
            seen.add(c.explanation.fingerprint)
            out.append((c.explanation, c.credential))  # type: ignore[arg-type]
    if not out:
        raise ParseError(errors[0] if errors else "no platform token or webhook URL found")
    return out


def _pasted(text: str, now: datetime, policy: Policy) -> Iterator[Candidate | Rejected]:
    for m in TOKEN.finditer(text):
        yield from token_candidates(m.group(), lambda: text, now, policy)
    for pattern in (SLACK_WEBHOOK, TEAMS_WEBHOOK, FLOW_WEBHOOK):
        for m in pattern.finditer(text):
            yield from webhook_candidates(m.group(), now, policy)
    for m in WANDB.finditer(text):
        yield from wandb_candidates(m.group("key"), now, policy)
    for m in KAGGLE.finditer(text):
        yield from kaggle_candidates(m.group("key"), lambda: text, now, policy)


def token_access(token: PlatformToken) -> Access:
    """What a token unlocks, until when, how to revoke it: its kind's row, plus the facts
    its format gave."""
    k: TokenKind = KINDS[token.kind]
    facts = dict(token.facts)
    steps = [RevocationStep(k.revoke[0].upper() + k.revoke[1:])]
    if k.revoke_command:
        steps.append(RevocationStep("Or revoke it through the API or CLI", k.revoke_command))
    steps.append(RevocationStep("Review what it did in the platform's audit or security log, "
                                "then replace it where it is legitimately used"))
    account, note = _account(facts)
    return Access(
        provider=k.platform, kind=k.kind, kind_label=k.label, account=account,
        account_note=note, endpoint=facts.get("workspace"), cloud=None, emulator=False,
        services=k.services, scope=Scope(level=k.level, description=k.unlocks),
        permissions=None, capabilities=(), destructive=(),
        validity=Validity(start=None, expiry=None, effective_expiry=None,
                          lifetime_seconds=k.lifetime_seconds, remaining_seconds=None,
                          expired=False, not_yet_valid=False, summary=k.validity),
        network=NetworkLimits(ip_range=None, protocols=("https",), summary=_ANY_IP),
        revocation=Revocation(individually_revocable=True, summary=k.revoke, steps=tuple(steps),
                              side_effects="every program and integration using it stops "
                              "working"),
        details={"rule": k.rule, "platform": k.platform_label, **facts,
                 "who_am_i": k.whoami, "max_lifetime_seconds": k.lifetime_seconds},
    )


def _account(facts: dict[str, str]) -> tuple[str | None, str | None]:
    for name, note in (("username", "the username beside the key"),
                       ("user_id", "the user id in the routable token's payload"),
                       ("team_id", "the Slack team (workspace) id in the URL"),
                       ("tenant_id", "the Microsoft Entra tenant id in the URL"),
                       ("workspace", "the Databricks workspace named nearby"),
                       ("flow_id", "the flow's id in the URL")):
        if name in facts:
            return facts[name], note
    return None, "the token does not name its owner offline (the who-am-I request does)"


def explain_token(token: PlatformToken, policy: Policy = DEFAULT_POLICY) -> Explanation:
    access = token_access(token)
    severity, reasons = evaluate(access, policy)
    notes = ["Signature not checked: a token is looked up by the platform, not signed."]
    if "checksum" in access.details:
        notes = [f"Its checksum was verified offline: {access.details['checksum']} (the "
                 "format is GitHub's or GitLab's; whether it is still active is not known "
                 "offline)."]
    if access.details.get("who_am_i"):
        notes.append(f"A live check would send {access.details['who_am_i']} "
                     "(not implemented yet; nothing was sent).")
    return Explanation(
        sentence=sentence(access), access=access, severity=severity, reasons=reasons,
        log_fingerprints={}, signature=_NOT_SIGNED, redacted=redact(token),
        fingerprint=fingerprint(token.kind, token.token), notes=tuple(notes),
    )


def redact(token: PlatformToken) -> str:
    """The token with only its prefix (or a webhook's public path) shown."""
    value = token.token
    if token.kind == "slack-webhook":
        return value.rsplit("/", 1)[0] + "/…(redacted)"
    if token.kind == "power-automate-webhook":
        return value.split("sig=")[0] + "sig=…(redacted)"
    if token.kind == "teams-webhook":
        return value.split("/IncomingWebhook/")[0] + "/IncomingWebhook/…(redacted)"
    head = _PREFIX.match(value)
    shown = head.group() if head else value[:4]
    return f"{shown}…(redacted, {len(value)} chars)"


def sentence(access: Access) -> str:
    """One plain sentence: what it is, what it unlocks, until when, how to revoke it."""
    who = f" ({access.account})" if access.account else ""
    return (f"This {access.kind_label}{who} {access.scope.description}; "
            f"{access.validity.summary}; revoke: {access.revocation.summary}.")
