"""Platform tokens as a provider: binds ``analyze/platforms/*`` (Hugging Face, OpenAI,
Anthropic, Weights & Biases, Kaggle, Replicate, Databricks, GitHub, GitLab and Slack
tokens; Slack and Teams webhook URLs) to the provider contract. One provider for the
whole table: its explanations' ``Access.provider`` is each token's platform
(``huggingface``, ``github``, …). A kind is checked live (``verify/whoami.py``)
where its table row names the very request a ``WhoAmI`` entry sends; a webhook URL
never is: the only check is a post, and a post sends a message."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyscope.analyze.platforms.explainer import (
    kaggle_candidates,
    read_text,
    token_candidates,
    wandb_candidates,
    webhook_candidates,
)
from keyscope.analyze.platforms.policy import RULES
from keyscope.analyze.platforms.table import KINDS
from keyscope.analyze.platforms.tokens import PlatformToken
from keyscope.analyze.policy import RuleTable
from keyscope.model import ProbeResult
from keyscope.providers.interface import (
    Candidate,
    Provider,
    Rejected,
    ScanParser,
    Site,
    TextReader,
    outside_installed_tests,
)

__all__ = ["NO_LIVE_CHECK", "WEBHOOK_NOT_POSTED", "PlatformToken", "Platforms"]

if TYPE_CHECKING:
    from keyscope.verify.transport import Request, Response

NO_LIVE_CHECK = (
    "keyscope has no read-only live check for this kind of token (its platform's "
    "who-am-I request is in the explanation); nothing was sent"
)
WEBHOOK_NOT_POSTED = (
    "not verified: a webhook URL can only be checked by posting to it, and a post that "
    "is accepted sends a message to its channel (or runs its flow); keyscope never posts "
    "to it, so nothing was sent"
)


@outside_installed_tests
def _token(site: Site) -> list[Candidate | Rejected]:
    return token_candidates(site.value, site.lines, site.now, site.policy)


@outside_installed_tests
def _webhook(site: Site) -> list[Candidate | Rejected]:
    return webhook_candidates(site.value, site.now, site.policy)


@outside_installed_tests
def _wandb(site: Site) -> list[Candidate | Rejected]:
    return wandb_candidates(site.value, site.now, site.policy)


@outside_installed_tests
def _kaggle(site: Site) -> list[Candidate | Rejected]:
    return kaggle_candidates(site.value, site.lines, site.now, site.policy)


class Platforms(Provider[PlatformToken]):
    """Tokens of ML platforms, code hosts and chat, and chat webhook URLs."""

    name: ClassVar[str] = "platforms"
    credential_types: ClassVar[tuple[type, ...]] = (PlatformToken,)
    parsers: ClassVar[Mapping[str, ScanParser]] = {
        "platform-token": _token,
        "chat-webhook": _webhook,
        "wandb-api-key": _wandb,
        "kaggle-api-key": _kaggle,
    }
    rules: ClassVar[RuleTable] = RULES
    reader: ClassVar[TextReader | None] = read_text

    def plan(
        self, credential: PlatformToken, account: str | None, deep: bool
    ) -> list[Request] | str:
        from keyscope.verify.whoami import whoami_requests  # only for --verify

        if KINDS[credential.kind].rule == "webhook-url":
            return WEBHOOK_NOT_POSTED
        name = whoami_name(credential)
        if name is None:
            return NO_LIVE_CHECK
        return whoami_requests(name, credential.token, dict(credential.facts))

    def judge(
        self, credential: PlatformToken, request: Request, response: Response, now: datetime
    ) -> ProbeResult:
        from keyscope.verify.whoami import whoami_judge

        name = whoami_name(credential)
        assert name is not None  # plan sent a request: the token has a who-am-I check
        return whoami_judge(name, request, response)


def whoami_name(token: PlatformToken) -> str | None:
    """The who-am-I check (``verify/whoami.WHOAMI``) of a token's kind: only when the
    platform table names that very request for the kind (an OpenAI admin key, a GitHub
    App's installation token or a webhook URL answer other requests, or none)."""
    from keyscope.verify.whoami import whoami_for

    row = KINDS[token.kind]
    entry = whoami_for(token.kind, row.platform)
    if entry is None or row.whoami is None:
        return None
    sent = f"{entry.method} {entry.base}{entry.path} "
    return entry.name if row.whoami.startswith(sent) else None
