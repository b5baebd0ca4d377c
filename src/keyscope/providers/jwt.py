"""JWTs as a provider: binds ``analyze/jwt/*`` (decoded offline: alg, issuer, audience,
subject, scopes, expiry; the signature never checked) to the provider contract. Live
checks are not implemented (a JWT's audience is rarely a who-am-I endpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from keyscope.analyze.jwt.claims import Jwt
from keyscope.analyze.jwt.explainer import PROVIDER, RULES, jwt_candidates, read_text
from keyscope.analyze.policy import RuleTable
from keyscope.providers.interface import (
    Candidate,
    Provider,
    Rejected,
    ScanParser,
    Site,
    TextReader,
    outside_installed_tests,
)

__all__ = ["NO_LIVE_CHECK", "Jwt", "JwtTokens"]

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
    reader: ClassVar[TextReader | None] = read_text
    no_live_check: ClassVar[str] = NO_LIVE_CHECK
