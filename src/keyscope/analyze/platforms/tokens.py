"""Platform tokens read from captured text: which kind a value is (by its prefix and
exact shape), what its format says offline (a checksum, a routable payload, a Slack
team id), and whether it is a documentation or test stand-in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from keyscope.analyze.placeholders import stands_in, word_pattern
from keyscope.analyze.platforms.checksums import github_checksum_ok, gitlab_routable

_OPENAI = "[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}"  # T3BlbkFJ: Base64 of "OpenAI"
# prefix, kind, exact shape of the whole token (first match wins)
_SHAPES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (prefix, kind, re.compile(shape)) for prefix, kind, shape in (
        ("hf_", "hf-user-token", r"hf_[A-Za-z]{34}"),
        ("api_org_", "hf-org-token", r"api_org_[A-Za-z]{34}"),
        ("sk-ant-api03-", "anthropic-api-key", r"sk-ant-api03-[A-Za-z0-9_-]{93}AA"),
        ("sk-ant-admin01-", "anthropic-admin-key", r"sk-ant-admin01-[A-Za-z0-9_-]{93}AA"),
        ("sk-proj-", "openai-project-key", rf"sk-proj-{_OPENAI}"),
        ("sk-svcacct-", "openai-service-account-key", rf"sk-svcacct-{_OPENAI}"),
        ("sk-admin-", "openai-admin-key", rf"sk-admin-{_OPENAI}"),
        ("sk-", "openai-user-key", r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"),
        ("r8_", "replicate-api-token", r"r8_[A-Za-z0-9_-]{37}"),
        ("wandb_v1_", "wandb-api-key", r"wandb_v1_[A-Za-z0-9]{27}_[A-Za-z0-9]{49}"),
        ("KGAT_", "kaggle-api-token", r"KGAT_[0-9a-f]{32}"),
        ("dapi", "databricks-token", r"dapi[0-9a-f]{32}(?:-[0-9])?"),
        ("ghp_", "github-classic-token", r"ghp_[A-Za-z0-9]{36}"),
        ("gho_", "github-oauth-token", r"gho_[A-Za-z0-9]{36}"),
        ("ghu_", "github-user-to-server-token", r"ghu_[A-Za-z0-9]{36}"),
        ("ghs_", "github-installation-token", r"ghs_[A-Za-z0-9]{36}"),
        ("ghr_", "github-refresh-token", r"ghr_[A-Za-z0-9]{36}"),
        ("github_pat_", "github-fine-grained-token",
         r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"),
        ("glpat-", "gitlab-access-token", r"glpat-[A-Za-z0-9_-]{20}"),
        ("gldt-", "gitlab-deploy-token", r"gldt-[A-Za-z0-9_-]{20}"),
        ("glrt-", "gitlab-runner-token", r"glrt-(?:t[0-9]_)?[A-Za-z0-9_-]{20}"),
        ("GR1348941", "gitlab-runner-registration-token", r"GR1348941[A-Za-z0-9_-]{20}"),
        ("glptt-", "gitlab-trigger-token", r"glptt-[0-9a-f]{40}"),
        ("glft-", "gitlab-feed-token", r"glft-[A-Za-z0-9_-]{20}"),
        ("glimt-", "gitlab-incoming-email-token", r"glimt-[A-Za-z0-9_-]{25}"),
        ("glagent-", "gitlab-agent-token", r"glagent-[A-Za-z0-9_-]{50}"),
        ("gloas-", "gitlab-oauth-secret", r"gloas-[A-Za-z0-9_-]{64}"),
        ("glsoat-", "gitlab-scim-token", r"glsoat-[A-Za-z0-9_-]{20}"),
        ("glcbt-", "gitlab-ci-job-token", r"glcbt-[0-9a-fA-F]{1,5}_[A-Za-z0-9_-]{20}"),
        ("xoxb-", "slack-bot-token", r"xoxb-[0-9]{8,13}-[0-9]{8,13}-[A-Za-z0-9]{24,34}"),
        ("xoxp-", "slack-user-token", r"xoxp-[0-9]{8,13}-[0-9]{8,13}-[0-9]{8,13}-[a-f0-9]{32}"),
        ("xapp-", "slack-app-token", r"xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,14}-[a-f0-9]{64}"),
        ("xoxe.xox", "slack-config-token", r"xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{160,170}"),
        ("xoxe-", "slack-config-token", r"xoxe-[0-9]-[A-Za-z0-9]{140,150}"),
        ("xoxa-", "slack-legacy-token", r"xox[ar]-[0-9]+-[0-9]+-[0-9]+-[a-f0-9]{32}"),
        ("xoxr-", "slack-legacy-token", r"xox[ar]-[0-9]+-[0-9]+-[0-9]+-[a-f0-9]{32}"),
    )
)
# The part of a GitLab token that is random, before a routable token's tail.
_GITLAB_ROUTABLE = re.compile(
    r"(?P<prefix>gl[a-z]+-)[A-Za-z0-9_-]{27,300}(?:\.[0-9a-z]{2})?\.[0-9a-z]{9}"
)
_WORDS = word_pattern(
    "example", "placeholder", "your", "xxxxx", "redacted", "dummy", "sample", "replace",
    "insert", "changeme", "secret", "token", "abcdef", "fedcba", "123456", "qwerty",
)
_HF_WORDS = word_pattern("xxxxx", "your", "example", "placeholder", "dummy", "redacted", "abcdef")
SLACK_WEBHOOK = re.compile(
    r"https://hooks\.slack\.com/(?:services/(?P<team>T[A-Z0-9]{8,12})/(?P<hook>B[A-Z0-9]{8,12})"
    r"/(?P<s>[A-Za-z0-9]{24})|(?:workflows|triggers)/(?P<team2>T[A-Z0-9]{8,12})/"
    r"(?P<hook2>A[A-Z0-9]{8,12})/[0-9]{15,20}/(?P<s2>[A-Za-z0-9]{32}))"
)
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TEAMS_WEBHOOK = re.compile(
    rf"https://(?P<host>[a-z0-9-]{{1,63}}\.webhook\.office\.com|outlook\.office(?:365)?\.com)"
    rf"/webhookb?2?/(?P<group>{_GUID})@(?P<tenant>{_GUID})/IncomingWebhook/(?P<s>[0-9a-f]{{32}})"
    rf"/(?P<owner>{_GUID})(?:/V2[A-Za-z0-9_-]{{20,80}})?"
)

# A Power Automate (Teams Workflows) or Logic Apps HTTP trigger: its sig= is the secret.
FLOW_WEBHOOK = re.compile(
    r"https://(?P<host>[a-z0-9-]{1,80}(?:\.[a-z0-9-]{1,63}){0,4}\.(?:logic\.azure\.com|"
    r"environment\.api\.powerplatform\.com))(?::443)?/(?:powerautomate/automations/direct/)?"
    r"workflows/(?P<flow>[0-9a-f]{32})/triggers/[A-Za-z0-9_%-]{1,80}/paths/invoke\?"
    r"(?P<query>[A-Za-z0-9_%=&;.-]{10,800})"
)


@dataclass(frozen=True)
class PlatformToken:
    """A platform token or webhook URL: its kind (``table.KINDS``), the secret, and the
    facts its format gives offline (name → value, shown in ``Access.details``)."""

    kind: str
    token: str
    facts: tuple[tuple[str, str], ...] = ()


def placeholder(body: str) -> str | None:
    """Why a token's random part is a stand-in (a word, a pattern, too few distinct
    characters), else ``None``."""
    if stands_in(body, _WORDS):
        return "placeholder token (a word or a pattern in its random part)"
    if len(set(body)) < min(12, len(body) // 3):
        return "placeholder token (too few distinct characters)"
    letters = [c for c in body if c.isalpha()]
    if len(body) >= 30 and len(letters) >= 20 and (
        all(c.islower() for c in letters) or all(c.isupper() for c in letters)
    ) and not re.fullmatch(r"[0-9a-f]+|[0-9A-F]+", body.replace("-", "").replace("_", "")):
        return "placeholder token (one letter case in a mixed-case alphabet)"
    return None


def read_token(value: str) -> PlatformToken | str:
    """The token ``value`` is, or why it is none (a string)."""
    gitlab = _GITLAB_ROUTABLE.fullmatch(value)
    if gitlab:
        return _routable(value, gitlab.group("prefix"))
    for prefix, kind, shape in _SHAPES:
        if value.startswith(prefix):
            if not shape.fullmatch(value):
                return f"not a {kind} (its length or alphabet is off)"
            return _checked(kind, value, prefix)
    return "no known token prefix"


def _checked(kind: str, value: str, prefix: str) -> PlatformToken | str:
    body = value[len(prefix):]
    if kind.startswith("slack-") and not kind.startswith("slack-config"):
        body = body.rsplit("-", 1)[-1]
    if kind.startswith("openai-"):
        body = body.replace("T3BlbkFJ", "")
    reason = placeholder(body) if kind != "hf-user-token" else _hf_placeholder(body)
    if reason:
        return reason
    facts: list[tuple[str, str]] = []
    if kind.startswith("github-") and kind != "github-fine-grained-token":
        if not github_checksum_ok(value):
            return "GitHub token checksum (CRC-32) does not match: GitHub never issued it"
        facts.append(("checksum", "CRC-32 verified offline"))
    if kind in ("slack-bot-token", "slack-user-token"):
        facts.append(("team_number", value.split("-")[1]))
    if kind == "slack-app-token":
        facts.append(("app_id", value.split("-")[2]))
    return PlatformToken(kind, value, tuple(facts))


def _hf_placeholder(body: str) -> str | None:
    if stands_in(body, _HF_WORDS):
        return "placeholder token (a word or a pattern in its random part)"
    if len(set(body)) < 14 or not (re.search("[a-z]", body) and re.search("[A-Z]", body)):
        return "placeholder token (too few distinct letters, or one case only)"
    return None


_GITLAB_KINDS = {prefix: kind for prefix, kind, _ in _SHAPES if prefix.startswith("gl")}


def _routable(value: str, prefix: str) -> PlatformToken | str:
    kind = _GITLAB_KINDS.get(prefix)
    if kind is None:
        return f"unknown GitLab token prefix {prefix!r}"
    payload = gitlab_routable(value)
    if payload is None:
        return "GitLab routable token checksum (CRC-32) does not match: GitLab never issued it"
    facts = [("checksum", "CRC-32 verified offline")]
    names = {"o": "organization_id", "u": "user_id", "g": "group_id", "p": "project_id",
             "c": "cell_id"}
    for key, name in names.items():
        if key in payload:
            facts.append((name, str(int(payload[key], 36))))
    return PlatformToken(kind, value, tuple(facts))


def read_webhook(value: str) -> PlatformToken | str:
    """A Slack or Teams incoming-webhook URL, or why it is none."""
    m = SLACK_WEBHOOK.fullmatch(value)
    if m:
        secret = m.group("s") or m.group("s2")
        reason = placeholder(secret)
        if reason:
            return reason
        team = m.group("team") or m.group("team2")
        return PlatformToken("slack-webhook", value, (("team_id", team),))
    m = TEAMS_WEBHOOK.fullmatch(value)
    if m:
        reason = placeholder(m.group("s"))
        if reason or m.group("tenant") == "0" * 8 + "-0000-0000-0000-" + "0" * 12:
            return reason or "placeholder tenant"
        return PlatformToken("teams-webhook", value, (("tenant_id", m.group("tenant")),
                                                       ("group_id", m.group("group"))))
    m = FLOW_WEBHOOK.fullmatch(value)
    if m:
        query = dict(
            part.partition("=")[::2] for part in m.group("query").replace("&amp;", "&").split("&")
        )
        sig = query.get("sig", "")
        if re.fullmatch(r"[A-Za-z0-9_-]{40,50}", sig) is None:
            return "Power Automate trigger URL without a sig= signature"
        reason = placeholder(sig)
        if reason:
            return reason
        return PlatformToken("power-automate-webhook", value, (("flow_id", m.group("flow")),
                                                                ("host", m.group("host"))))
    return "not a Slack, Teams or Power Automate webhook URL"
