"""The provider contract: what a credential family brings to keyscope.

A provider parses the values its detection rules capture (scan path), reads and
explains pasted text (``keyscope explain``), names its policy rules, and says how to
check a credential live (``--verify``). Revocation steps are part of what it
explains (``Explanation.access.revocation``). The pipeline, ``explain``, the config
loader and the verify runner reach a provider only through ``registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from keyscope.analyze.policy import Policy, RuleTable
from keyscope.model import Explanation, ProbeResult

if TYPE_CHECKING:
    from keyscope.providers.registry import Credential
    from keyscope.verify.transport import Request, Response

C = TypeVar("C")


@dataclass(frozen=True)
class Site:
    """A value a detection rule captured, as a provider's parser receives it."""

    value: str  # the captured bytes, read as Latin-1
    now: datetime
    policy: Policy
    # A few lines either side, centred on the value (for an account name nearby).
    lines: Callable[[], str]
    # What precedes the value on its line, at most 256 characters (its label).
    line_prefix: Callable[[], str]
    # The blob's path (an installed package's test data is told apart by it).
    path: str = ""


@dataclass(frozen=True)
class Candidate:
    """One credential found in a captured value: its explanation and raw secret."""

    explanation: Explanation
    secret: str
    credential: Credential


@dataclass(frozen=True)
class Rejected:
    """A captured value that is not a credential, and why (counted, never reported)."""

    reason: str


# A parser named by rules' ``parser = "…"``: one captured value → what it holds.
ScanParser = Callable[[Site], list[Candidate | Rejected]]
# A family's pasted-text reader: (text, now, policy) → [(explanation, credential)].
TextReader = Callable[[str, datetime, Policy], list[tuple[Explanation, Any]]]


def outside_installed_tests(parse: ScanParser) -> ScanParser:
    """``parse``, except in an installed package's test data (``analyze/fixtures.py``:
    published test vectors), where the value is rejected with that reason."""
    from keyscope.analyze.fixtures import installed_test_fixture

    def parser(site: Site) -> list[Candidate | Rejected]:
        fixture = installed_test_fixture(site.path)
        return [Rejected(fixture)] if fixture else parse(site)

    return parser


class Provider(Generic[C]):
    """One credential family. ``C`` is the type of its parsed credentials."""

    # ``Access.provider`` of its explanations, e.g. "azure-storage".
    name: ClassVar[str]
    # The types of its parsed credentials: how a credential finds its provider.
    credential_types: ClassVar[tuple[type, ...]]
    # Parser name (as rule files say ``parser = "…"``) → scan-path function.
    parsers: ClassVar[Mapping[str, ScanParser]]
    # Its policy rules, code → (default severity, meaning); ``[severity]`` in the
    # config may override each.
    rules: ClassVar[RuleTable]
    # ``read_text(text, now, policy)`` of its ``analyze/`` package, for a family whose
    # credentials need no account or key given beside them (``explain``'s default).
    reader: ClassVar[TextReader | None] = None
    # Why its credentials cannot be checked live (``plan``'s default).
    no_live_check: ClassVar[str] = "keyscope has no live check for this kind of credential"

    def explain(
        self,
        text: str,
        now: datetime,
        *,
        account: str | None,
        keys: tuple[str, ...],
        policy: Policy,
    ) -> list[tuple[Explanation, C]]:
        """Read every credential of this family in pasted text and explain each
        (credentials read together explain each other: a key signs a SAS beside it).
        Raises ``ParseError`` when the text holds none. By default: ``reader``."""
        reader = type(self).reader
        if reader is None:
            raise NotImplementedError(f"{self.name} reads no pasted text")
        return reader(text, now, policy)

    def plan(self, credential: C, account: str | None, deep: bool) -> list[Request] | str:
        """The read-only requests a live check sends, first the one whose answer
        decides; the others (only with ``deep``) are sent only if it was accepted.
        A string says why the credential cannot be checked."""
        return self.no_live_check

    def judge(
        self, credential: C, request: Request, response: Response, now: datetime
    ) -> ProbeResult:
        """What one answer to a planned request means (a status of
        ``verify.interface.STATUSES``)."""
        raise NotImplementedError(f"{self.name} plans no requests")

    def guessed_account(self, credential: C, account: str | None) -> str | None:
        """The account name a check used that the credential does not carry itself
        (given, or found nearby): a refusal may then mean "another account"."""
        return None
