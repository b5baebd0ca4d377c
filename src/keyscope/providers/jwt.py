"""JWTs as a provider: binds ``analyze/jwt/*`` (decoded offline: alg, issuer, audience,
subject, scopes, expiry; the signature never checked) to the provider contract. Live
checks are not implemented (a JWT's audience is rarely a who-am-I endpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyscope.analyze.jwt.claims import Jwt
from keyscope.analyze.jwt.explainer import PROVIDER, RULES, jwt_candidates, read_text
from keyscope.analyze.policy import Policy, RuleTable
from keyscope.model import Explanation
from keyscope.providers.interface import (
    Candidate,
    Provider,
    Rejected,
    ScanParser,
    Site,
    outside_installed_tests,
)

__all__ = ["NO_LIVE_CHECK", "Jwt", "JwtTokens"]

if TYPE_CHECKING:
    from keyscope.verify.transport import Request

NO_LIVE_CHECK = (
    "keyscope has no live check for JWTs yet (its audience decides where it works); "
    "nothing was sent"
)


@outside_installed_tests
def _jwt(site: Site) -> list[Candidate | Rejected]:
    return jwt_candidates(site.value, site.now, site.policy)


class JwtTokens(Provider[Jwt]):
    """JSON Web Tokens (compact JWS)."""

    name: ClassVar[str] = PROVIDER
    credential_types: ClassVar[tuple[type, ...]] = (Jwt,)
    parsers: ClassVar[Mapping[str, ScanParser]] = {"jwt": _jwt}
    rules: ClassVar[RuleTable] = RULES

    def explain(
        self,
        text: str,
        now: datetime,
        *,
        account: str | None,
        keys: tuple[str, ...],
        policy: Policy,
    ) -> list[tuple[Explanation, Jwt]]:
        return read_text(text, now, policy)

    def plan(self, credential: Jwt, account: str | None, deep: bool) -> list[Request] | str:
        return NO_LIVE_CHECK
