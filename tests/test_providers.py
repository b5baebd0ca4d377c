"""The provider contract: a throwaway provider, registered at run time with its own
rule file (``--rules DIR``), is found by a scan, explained by ``keyscope.explain``,
rated with the user's policy and checked by ``--verify`` — without a line of
keyscope changed. And the built-in wiring goes through the same registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

import keyscope
from keyscope import verify
from keyscope.analyze.fingerprint import fingerprint
from keyscope.analyze.policy import DEFAULT_POLICY, Policy, RuleTable, rate
from keyscope.cli import main
from keyscope.config import load_policy
from keyscope.detect.engine import make_engine
from keyscope.detect.rules import LAYER_PARSERS, builtin_rule_files, load_rule_file, load_rules
from keyscope.errors import ConfigError, ParseError
from keyscope.model import (
    Access,
    Explanation,
    NetworkLimits,
    ProbeResult,
    Revocation,
    Scope,
    Severity,
    SignatureCheck,
    Validity,
)
from keyscope.pipeline import BlobScanner
from keyscope.providers import registry
from keyscope.providers.aws import Aws
from keyscope.providers.azure import AzureStorage
from keyscope.providers.gcp import Gcp
from keyscope.providers.interface import Candidate, Provider, Rejected, ScanParser, Site
from keyscope.providers.jwt import JwtTokens
from keyscope.providers.platforms import Platforms
from keyscope.providers.privatekeys import PrivateKeys
from keyscope.sources.interface import Blob
from keyscope.verify.transport import Request, Response, VerifyOptions

NOW = datetime(2026, 11, 26, tzinfo=UTC)
TOKEN = "toytok_" + "5e" * 12
TOKEN_RE = re.compile(r"toytok_[0-9a-f]{24}")
SAS_URL = (
    "https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r"
    "&se=2030-01-01T00:00:00Z&spr=https&sig=" + "A" * 43 + "="
)
RULE = """
[[rules]]
id = "toy-token"
name = "Toy token"
description = "A token of the toy provider."
parser = "toy-token"
pattern = 'toytok_[0-9a-f]{24}'
capture = '(?P<value>toytok_[0-9a-f]{24})'
keywords = ["toytok_"]
examples = ["toytok_0123456789abcdef01234567"]
"""


@dataclass(frozen=True)
class ToyToken:
    secret: str
    account: str | None = None


def _explained(token: ToyToken, policy: Policy) -> Explanation:
    access = Access(
        provider="toy",
        kind="toy-token",
        kind_label="toy token",
        account=token.account,
        account_note=None,
        endpoint=None,
        cloud=None,
        emulator=False,
        services=("toy",),
        scope=Scope("account", "the whole toy account"),
        permissions=None,
        capabilities=(),
        destructive=(),
        validity=Validity(None, None, None, None, None, False, False, "never expires"),
        network=NetworkLimits(None, ("https",), "from anywhere"),
        revocation=Revocation(True, "delete the token in the toy console", ()),
    )
    severity, reasons = rate([("toy-live", ToyProvider.rules["toy-live"][1])], policy,
                             ToyProvider.rules, {})
    return Explanation(
        sentence="A toy token: full access to the toy account, forever.",
        access=access,
        severity=severity,
        reasons=reasons,
        log_fingerprints={},
        signature=SignatureCheck("not-checked", "a toy token has no signature"),
        redacted=token.secret[:4] + "…(redacted)",
        fingerprint=fingerprint("toy-token", token.secret),
    )


def _parse(site: Site) -> list[Candidate | Rejected]:
    assert site.value in site.lines()  # the lines around it, centred on it
    if site.value.endswith("0" * 8):
        return [Rejected("toy placeholder")]
    account = "labelled" if "TOY_TOKEN" in site.line_prefix() else None
    token = ToyToken(site.value, account)
    return [Candidate(_explained(token, site.policy), site.value, token)]  # type: ignore[arg-type]


class ToyProvider(Provider[ToyToken]):
    name: ClassVar[str] = "toy"
    credential_types: ClassVar[tuple[type, ...]] = (ToyToken,)
    parsers: ClassVar[Mapping[str, ScanParser]] = {"toy-token": _parse}
    rules: ClassVar[RuleTable] = {
        "toy-live": (Severity.HIGH, "a toy token opens the whole toy account")
    }

    def explain(
        self, text: str, now: datetime, *, account: str | None, keys: tuple[str, ...],
        policy: Policy,
    ) -> list[tuple[Explanation, ToyToken]]:
        tokens = [ToyToken(t, account) for t in TOKEN_RE.findall(text)]
        if not tokens:
            raise ParseError("no toy token")
        return [(_explained(t, policy), t) for t in tokens]

    def plan(self, credential: ToyToken, account: str | None, deep: bool) -> list[Request] | str:
        url = "https://toy.example/whoami"
        return [Request("Who am I", "GET", f"{url}?t={credential.secret}", url)]

    def judge(
        self, credential: ToyToken, request: Request, response: Response, now: datetime
    ) -> ProbeResult:
        status = "live" if response.status == 200 else "signature-rejected"
        return ProbeResult(request.probe, request.method, request.shown_url, status,
                           response.status)

    def guessed_account(self, credential: ToyToken, account: str | None) -> str | None:
        return account if credential.account is None else None


@pytest.fixture
def toy() -> Iterator[ToyProvider]:
    provider = ToyProvider()
    registry.register(provider)
    try:
        yield provider
    finally:
        registry.unregister(provider)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "toy.toml").write_text(RULE)
    return folder


# The registry drives the rule loader


def test_rule_parsers_are_the_registrys(rules_dir: Path) -> None:
    """A rule may name only a parser of a registered provider (or the pipeline's own
    base64 layer); the built-in rules name Azure's, AWS's, Google Cloud's, the platform
    tokens', private keys' and JWTs'."""
    assert registry.parser_names() == (
        frozenset(AzureStorage.parsers) | frozenset(Aws.parsers) | frozenset(Gcp.parsers)
        | frozenset(Platforms.parsers) | frozenset(PrivateKeys.parsers)
        | frozenset(JwtTokens.parsers)
    )
    builtin = {r.parser for path in builtin_rule_files() for r in load_rule_file(path, True)}
    assert builtin <= registry.parser_names() | LAYER_PARSERS
    with pytest.raises(ConfigError, match=r"unknown parser 'toy-token' \(known: aws-key-pair"):
        load_rules((rules_dir,))


def test_a_registered_provider_makes_its_parser_known(
    toy: ToyProvider, rules_dir: Path
) -> None:
    assert "toy-token" in registry.parser_names()
    assert [r.parser for r in load_rules((rules_dir,)) if r.id == "toy-token"] == ["toy-token"]


def test_parser_names_are_unique_across_providers() -> None:
    class Clash(ToyProvider):
        parsers: ClassVar[Mapping[str, ScanParser]] = {"azure-sas": _parse}

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Clash())
    assert registry.parser("azure-sas") is AzureStorage.parsers["azure-sas"]


# The pipeline dispatches by parser name


def test_pipeline_dispatches_by_parser_name(toy: ToyProvider, rules_dir: Path) -> None:
    rules = load_rules((rules_dir,))
    scanner = BlobScanner(make_engine("re", rules), NOW, keep_credentials=True)
    text = f"x = 1\nTOY_TOKEN={TOKEN}\nplaceholder: toytok_{'0' * 24}\n"
    result = scanner.scan(Blob(path="app.env", data=text.encode()))
    [found] = result.findings
    credential: object = found.credential  # a toy's: outside keyscope's Credential union
    assert (found.rule_id, credential) == ("toy-token", ToyToken(TOKEN, "labelled"))
    assert found.explanation.severity == Severity.HIGH
    assert TOKEN not in found.location.snippet  # the pipeline masks what a parser found
    assert result.rejected["toy placeholder"] == 1


# End to end, through the CLI


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_toy_provider_is_found_by_a_scan_end_to_end(
    toy: ToyProvider, rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], jobs: str,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "settings.py").write_text(f'TOY_TOKEN = "{TOKEN}"\n')
    code = main(["scan", "-q", "-j", jobs, "--format", "json", "--rules", str(rules_dir),
                 "--now", "2026-11-26T00:00:00Z", str(tree)])
    out = capsys.readouterr().out
    [finding] = json.loads(out)["findings"]
    assert code == 1  # high is at or above the default --fail-on
    assert finding["rule_id"] == "toy-token"
    assert finding["explanation"]["access"]["provider"] == "toy"
    assert TOKEN not in out


def test_a_toy_rule_code_is_configurable(toy: ToyProvider, tmp_path: Path) -> None:
    config = tmp_path / "keyscope.toml"
    config.write_text('[policy.severity]\ntoy-live = "low"\n')
    policy = load_policy(config)
    [e] = keyscope.explain(TOKEN, NOW, policy=policy)
    assert e.severity == Severity.LOW


def test_config_knows_only_registered_rule_codes(tmp_path: Path) -> None:
    config = tmp_path / "keyscope.toml"
    config.write_text('[policy.severity]\ntoy-live = "low"\n')
    with pytest.raises(ConfigError, match="unknown rule 'toy-live'"):
        load_policy(config)


# explain and verify ask the registry


def test_explain_asks_every_provider(toy: ToyProvider) -> None:
    [e] = keyscope.explain(f"my token: {TOKEN}", NOW)
    assert e.access.provider == "toy"
    [azure] = keyscope.explain("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
                               + "A" * 86 + "==", NOW)
    assert azure.access.provider == "azure-storage"
    # Nothing any provider can read: the first provider's (Azure's) message, as before.
    with pytest.raises(ParseError, match="no Azure Storage credential found"):
        keyscope.explain("nothing here", NOW)


def test_without_the_toy_explain_fails_as_before() -> None:
    with pytest.raises(ParseError, match="no Azure Storage credential found"):
        keyscope.explain(TOKEN, NOW)


class _Transport:
    """Answers every request with ``status``; records what was sent."""

    def __init__(self, status: int) -> None:
        self.options = VerifyOptions()
        self.status = status
        self.sent: list[Request] = []

    def send(self, request: Request, fingerprint: str) -> Response:
        self.sent.append(request)
        return Response(self.status, {}, b"")


def test_verify_plans_and_judges_through_the_credentials_provider(toy: ToyProvider) -> None:
    token = ToyToken(TOKEN)
    target = verify.Target(token, None, "fp")  # type: ignore[arg-type]
    requests = verify.plan(target)
    assert not isinstance(requests, str)
    [request] = requests
    assert (request.probe, request.shown_url) == ("Who am I", "https://toy.example/whoami")
    assert TOKEN not in verify.plan_notice([target], VerifyOptions())

    live = verify.verify_one(target, _Transport(200))  # type: ignore[arg-type]
    assert (live.status, live.live) == ("live", True)
    # An account the token does not carry: a refusal is no proof it is dead.
    guessed = verify.Target(token, "someacct", "fp")  # type: ignore[arg-type]
    refused = verify.verify_one(guessed, _Transport(403))  # type: ignore[arg-type]
    assert (refused.status, refused.live) == ("signature-rejected", None)
    assert "someacct" in refused.summary

    [e] = keyscope.explain(TOKEN, NOW)
    [checked] = verify.verify_explanations([(e, token)], VerifyOptions(),  # type: ignore[list-item]
                                           transport=_Transport(200))  # type: ignore[arg-type]
    assert checked.verification is not None and checked.verification.live is True
    assert checked.severity == Severity.CRITICAL  # one step up: verified live


@dataclass(frozen=True)
class QuietToken:
    secret: str


class QuietProvider(Provider[QuietToken]):
    """A provider with no live check: the contract's defaults."""

    name: ClassVar[str] = "quiet"
    credential_types: ClassVar[tuple[type, ...]] = (QuietToken,)
    parsers: ClassVar[Mapping[str, ScanParser]] = {}
    rules: ClassVar[RuleTable] = {}

    def explain(
        self, text: str, now: datetime, *, account: str | None, keys: tuple[str, ...],
        policy: Policy,
    ) -> list[tuple[Explanation, QuietToken]]:
        raise ParseError("no quiet token")


def test_a_provider_without_probes_is_not_verifiable() -> None:
    quiet = QuietProvider()
    registry.register(quiet)
    try:
        target = verify.Target(QuietToken("q"), None, "fp")  # type: ignore[arg-type]
        transport = _Transport(200)
        v = verify.verify_one(target, transport)  # type: ignore[arg-type]
        # Azure still explains alone: a provider that finds nothing stays silent.
        [e] = keyscope.explain(SAS_URL, NOW)
    finally:
        registry.unregister(quiet)
    assert (v.status, v.live, transport.sent) == ("not-verifiable", None, [])
    assert v.summary == "Not checked: keyscope has no live check for this kind of credential."
    assert e.access.provider == "azure-storage"


def test_credentials_find_their_provider() -> None:
    [(_, sas)] = registry.explain_text(SAS_URL, NOW, policy=DEFAULT_POLICY)
    assert isinstance(registry.provider_of(sas), AzureStorage)
    assert registry.provider_of(ToyToken(TOKEN)) is None


# Only the registry knows which providers exist

SRC = Path(__file__).resolve().parent.parent / "src" / "keyscope"
NEUTRAL = (
    "explain.py", "config.py", "pipeline.py", "detect/rules.py", "analyze/policy.py",
    "verify/__init__.py", "providers/interface.py",
)


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", NEUTRAL)
def test_provider_neutral_modules_import_no_provider(module: str) -> None:
    """The pipeline, explain, the config, the rule loader and the verify runner ask the
    registry; none of them imports a provider's own modules."""
    wired = sorted(
        name for name in _imports(SRC / module)
        if name.startswith(("keyscope.analyze.azure", "keyscope.verify.azure",
                            "keyscope.providers.azure"))
    )
    assert wired == []


def test_readme_severity_table_is_the_registrys_rules() -> None:
    """The README documents every provider's policy rules with their defaults."""
    readme = (SRC.parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Severity policy", 1)[1].split("\n\n| rule |", 1)[1]
    rows = re.findall(r"^\| `([a-z-]+)` \| ([a-z]+)", table.split("\n\n", 1)[0], re.M)
    assert {code: Severity.parse(level) for code, level in rows} == registry.rule_codes()


def test_a_lazy_entry_names_the_parsers_of_its_provider() -> None:
    """The registry knows a built-in provider's parser names before importing it (rule
    files are checked against them at every start): they must be the class's own."""
    lazy = [e for e in registry.PROVIDERS if isinstance(e, registry.Lazy)]
    assert len(lazy) >= 3
    for entry in lazy:
        assert set(entry.parsers) == set(entry.load().parsers), entry.target
