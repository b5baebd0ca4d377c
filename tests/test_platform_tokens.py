"""Platform tokens (Hugging Face, OpenAI, Anthropic, W&B, Kaggle, Replicate, Databricks,
GitHub, GitLab, Slack) and Slack/Teams webhook URLs: minted here (GitHub's and GitLab's
checksums computed with zlib in tests/tokens.py), found on both engines and in parallel,
explained offline (what, until when, how to revoke), placeholders and bad checksums
dropped, masked in every output format."""

from __future__ import annotations

import json
import string
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.analyze.gcp.credentials import placeholder as gcp_placeholder
from keyscope.analyze.platforms.explainer import read_text as read_platforms
from keyscope.analyze.platforms.explainer import token_candidates
from keyscope.analyze.platforms.table import KINDS
from keyscope.analyze.platforms.tokens import read_token
from keyscope.analyze.policy import DEFAULT_POLICY
from keyscope.cli import main
from keyscope.errors import ParseError
from keyscope.explain import explain
from keyscope.model import Explanation, Finding
from keyscope.redact import mask
from keyscope.report import sarif
from keyscope.scan import ScanOptions, scan
from keyscope.verify.transport import VerifyOptions
from tests import tokens as mint
from tests.sdk import NOW
from tests.test_redaction import assert_hidden, outputs

TOKENS = mint.tokens()
WANDB = mint.rand(mint.HEX, 40)
KAGGLE = mint.rand(mint.HEX, 32)
SLACK_HOOK = mint.slack_webhook()
TEAMS_HOOK = mint.teams_webhook()
FLOW_HOOK = mint.flow_webhook()
# kind → (platform, severity)
EXPECTED = {
    "hf-user-token": ("huggingface", "high"),
    "openai-project-key": ("openai", "high"),
    "openai-user-key": ("openai", "high"),
    "openai-admin-key": ("openai", "critical"),
    "anthropic-api-key": ("anthropic", "high"),
    "anthropic-admin-key": ("anthropic", "critical"),
    "replicate-api-token": ("replicate", "high"),
    "databricks-token": ("databricks", "high"),
    "github-classic-token": ("github", "critical"),
    "github-oauth-token": ("github", "critical"),
    "github-user-to-server-token": ("github", "medium"),
    "github-installation-token": ("github", "medium"),
    "github-refresh-token": ("github", "critical"),
    "github-fine-grained-token": ("github", "critical"),
    "gitlab-access-token": ("gitlab", "critical"),
    "gitlab-deploy-token": ("gitlab", "critical"),
    "gitlab-runner-token": ("gitlab", "critical"),
    "gitlab-trigger-token": ("gitlab", "critical"),
    "slack-bot-token": ("slack", "high"),
    "slack-user-token": ("slack", "high"),
    "wandb-api-key": ("wandb", "high"),
    "kaggle-api-token": ("kaggle", "high"),
}


def one(text: str) -> Explanation:
    found = explain(text, NOW)
    assert len(found) == 1, [e.sentence for e in found]
    return found[0]


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_each_token_is_explained(kind: str) -> None:
    token = TOKENS[kind]
    e = one(f"TOKEN={token}\n")
    row = KINDS[kind]
    assert (e.access.provider, e.access.kind, e.severity.label) == (*EXPECTED[kind][:1], kind,
                                                                   EXPECTED[kind][1])
    assert e.access.scope.description == row.unlocks
    assert e.access.revocation.summary == row.revoke and row.revoke in e.sentence
    assert e.access.validity.summary == row.validity
    assert e.access.details["who_am_i"] == row.whoami
    assert token[8:] not in e.redacted and token[8:] not in e.sentence
    assert e.signature.status == "not-checked"


def test_checksums_are_verified_offline() -> None:
    for kind in ("github-classic-token", "github-installation-token"):
        e = one(TOKENS[kind])
        assert e.access.details["checksum"] == "CRC-32 verified offline"
    routable = one(TOKENS["gitlab-access-token"])
    # the payload o:1, u:4k3 (base36): organization 1, user 5907
    assert (routable.access.details["organization_id"], routable.access.account) == ("1", "5907")
    runner = one(TOKENS["gitlab-runner-token"])
    assert (runner.access.details["cell_id"], runner.access.details["user_id"]) == ("1", "82")
    unversioned = mint.gitlab_routable(versioned=False, payload=b"o:2\nu:z")
    assert one(unversioned).access.details["user_id"] == "35"


def test_a_bad_checksum_is_not_reported(tmp_path: Path) -> None:
    """A value whose CRC-32 fails was never issued by GitHub or GitLab: a typo, a made-up
    example or a test string. It cannot authenticate, so it is dropped (and counted)."""
    bad = [mint.flip_last(TOKENS["github-classic-token"]),
           mint.flip_last(mint.github("ghs_")),
           mint.flip_last(TOKENS["gitlab-access-token"])]
    for value in bad:
        with pytest.raises(ParseError):
            explain(value, NOW)
        with pytest.raises(ParseError, match="checksum"):
            read_platforms(value, NOW, DEFAULT_POLICY)
    (tmp_path / "ci.env").write_text("".join(f"TOKEN_{i}={v}\n" for i, v in enumerate(bad)))
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False))
    assert result.findings == []
    assert sum(n for reason, n in result.stats.rejected.items() if "checksum" in reason) == 3


def test_time_limited_kinds_say_so() -> None:
    e = one(TOKENS["github-installation-token"])
    assert e.access.validity.lifetime_seconds == 3600
    assert {r.code for r in e.reasons} == {"code-host-token", "short-lived", "live"}
    fine = one(TOKENS["github-fine-grained-token"])
    assert fine.access.validity.summary.startswith("unknown offline")


def test_labelled_keys_need_their_label() -> None:
    e = one(f"export WANDB_API_KEY={WANDB}\n")
    assert (e.access.provider, e.access.kind) == ("wandb", "wandb-api-key")
    netrc = one(f"machine api.wandb.ai\n  login user\n  password {WANDB}\n")
    assert netrc.fingerprint == e.fingerprint
    kaggle = one(json.dumps({"username": "mlresearcher", "key": KAGGLE}))
    assert (kaggle.access.kind, kaggle.access.account) == ("kaggle-api-key", "mlresearcher")
    with pytest.raises(ParseError):
        explain(f"commit {WANDB}\n", NOW)
    with pytest.raises(ParseError, match="username"):
        read_platforms(json.dumps({"id": 7, "key": KAGGLE}), NOW, DEFAULT_POLICY)


def test_webhooks_are_explained() -> None:
    slack = one(f'SLACK_WEBHOOK_URL="{SLACK_HOOK}"')
    assert (slack.access.kind, slack.severity.label) == ("slack-webhook", "medium")
    assert slack.access.account == SLACK_HOOK.split("/")[4]
    assert SLACK_HOOK.rsplit("/", 1)[1] not in slack.redacted
    teams = one(TEAMS_HOOK)
    assert (teams.access.provider, teams.access.kind) == ("microsoft-teams", "teams-webhook")
    assert teams.access.account == TEAMS_HOOK.split("@")[1].split("/")[0]
    flow = one(f"<a href='{FLOW_HOOK.replace('&', '&amp;')}'>post</a>")
    assert (flow.access.kind, flow.severity.label) == ("power-automate-webhook", "medium")
    assert flow.access.account == FLOW_HOOK.split("/workflows/")[1][:32]
    assert FLOW_HOOK.split("sig=")[1] not in flow.redacted + flow.sentence


def test_databricks_workspace_from_nearby_host() -> None:
    e = one(f"[DEFAULT]\nhost = https://adb-4821390147.12.azuredatabricks.net\n"
            f"token = {TOKENS['databricks-token']}\n")
    assert e.access.endpoint == "adb-4821390147.12.azuredatabricks.net"


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _planted(root: Path) -> set[tuple[str, str]]:
    """Files holding every shape: (file, kind) expected."""
    expected = set()
    for kind, token in TOKENS.items():
        _write(root, f"env/{kind}.env", f"TOKEN={token}\n")
        expected.add((f"env/{kind}.env", kind))
    _write(root, "wandb.env", f"WANDB_API_KEY={WANDB}\n")
    _write(root, "kaggle.json", json.dumps({"username": "mlresearcher", "key": KAGGLE}))
    _write(root, "notify.py",
           f'HOOK = "{SLACK_HOOK}"\nTEAMS = "{TEAMS_HOOK}"\nFLOW = "{FLOW_HOOK}"\n')
    expected |= {("wandb.env", "wandb-api-key"), ("kaggle.json", "kaggle-api-key"),
                 ("notify.py", "slack-webhook"), ("notify.py", "teams-webhook"),
                 ("notify.py", "power-automate-webhook")}
    return expected


def _scan(root: Path, engine: str = "re", jobs: int = 1) -> list[Finding]:
    options = ScanOptions(jobs=jobs, now=NOW, engine=engine, cache_dir=root / ".cache",
                          git=False)
    return scan([root], options).findings


@pytest.mark.parametrize(("engine", "jobs"), [("re", 1), ("hyperscan", 1), ("hyperscan", 2)])
def test_scan_finds_every_shape(tmp_path: Path, engine: str, jobs: int) -> None:
    expected = _planted(tmp_path)
    seen = {
        (Path(loc.path).relative_to(tmp_path).as_posix(), f.explanation.access.kind)
        for f in _scan(tmp_path, engine, jobs) for loc in f.locations
    }
    assert seen == expected


NEGATIVES = """\
HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
HF_TOKEN=hf_...
login(token="hf_YOUR_TOKEN_HERE_abcdefghijklmnopqrs")
hf_hub_download_and_cache_the_model_weights_file
OPENAI_API_KEY=sk-...
OPENAI_API_KEY=sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxT3BlbkFJxxxxxxxxxxxxxxxxxxxxxxxxxxxx
api_key = "sk-YOUR_API_KEY"
ANTHROPIC_API_KEY=sk-ant-api03-...
GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a
GITLAB_TOKEN=glpat-xxxxxxxxxxxxxxxxxxxx
GITLAB_TOKEN=glpat-<your-token-here>
SLACK_BOT_TOKEN=xoxb-your-bot-token
SLACK_BOT_TOKEN=xoxb-1234567890-1234567890123-abcdefghijklmnopqrstuvwx
SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX
REPLICATE_API_TOKEN=r8_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
token = dapi00000000000000000000000000000000
WANDB_API_KEY=0000000000000000000000000000000000000000
{"username": "mlresearcher", "key": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
sha = "5286091f8257f1b7ce2710dc2e55756a8d0b53b6"
"""


def test_placeholders_docs_examples_and_bare_hex_are_not_reported(tmp_path: Path) -> None:
    _write(tmp_path, "README.md", NEGATIVES)
    assert _scan(tmp_path) == []


def test_a_word_that_random_characters_spell_by_chance_does_not_hide_a_token() -> None:
    """Random tokens hold ``yoUr``, ``XxXx`` or one word inside by chance (3 of the
    10,000 of benchmarks/dense_tokens.py were lost that way): they are real tokens. A
    placeholder starts with its word, or repeats words, as typed."""
    hf_body = mint.rand(string.ascii_letters, 12) + "EyoUrR" + mint.rand(string.ascii_letters, 16)
    openai = ("sk-proj-" + mint.rand(mint.ALNUM, 70) + "UUT3BlbkFJCXXXXI15"
              + mint.rand(mint.ALNUM, 60))  # fmt: skip
    inside = "glpat-" + mint.rand(mint.ALNUM, 8) + "token" + mint.rand(mint.ALNUM, 7)
    for token in (f"hf_{hf_body}", openai, inside):
        assert not isinstance(read_token(token), str), (token, read_token(token))
    for placeholder in ("hf_YOURTOKENHEREabcdefghijklmnopqrst", "glpat-yourTokenGoesHere1",
                        "glpat-a1B2c3YOUR_TOKENd4", "sk-proj-" + "x" * 40 + "T3BlbkFJ" + "x" * 40):
        assert isinstance(read_token(placeholder), str), placeholder
    key = "AIza" + mint.rand(mint.ALNUM, 4) + "xXxX" + mint.rand(mint.ALNUM, 27)
    assert gcp_placeholder(key) is None
    assert gcp_placeholder("AIzaSyYOUR_API_KEY_xxxxxxxxxxxxxxxxxxx") is not None


def test_installed_packages_test_data_is_not_reported(tmp_path: Path) -> None:
    site = tmp_path / "lib/python3.11/site-packages"
    _write(site, "somelib/tests/test_auth.py", f'TOKEN = "{TOKENS["hf-user-token"]}"\n')
    _write(site, "somelib/auth.py", f'TOKEN = "{TOKENS["replicate-api-token"]}"\n')
    found = _scan(tmp_path)
    assert [f.explanation.access.kind for f in found] == ["replicate-api-token"]


def test_secrets_masked_in_every_format(tmp_path: Path) -> None:
    _planted(tmp_path)
    outs = outputs(tmp_path)
    secrets = [t[len(t) // 4:] for t in TOKENS.values()]
    secrets += [WANDB[4:], KAGGLE[4:], SLACK_HOOK.rsplit("/", 1)[1], TEAMS_HOOK.split("/")[-2],
                FLOW_HOOK.split("sig=")[1]]
    assert_hidden(secrets, outs)
    assert "huggingface" in outs["json"] and "hf-user-token" in outs["jsonl"]


def test_free_text_shapes_are_masked_without_knowing_the_secret() -> None:
    text = "\n".join([*(f"{k} {t}" for k, t in TOKENS.items()), f"WANDB_API_KEY={WANDB}",
                      json.dumps({"username": "u", "key": KAGGLE}), SLACK_HOOK, TEAMS_HOOK])
    masked = mask(text)
    for token in [*TOKENS.values(), WANDB, KAGGLE]:
        assert token[12:] not in masked, token
    assert SLACK_HOOK.rsplit("/", 1)[1] not in masked
    assert TEAMS_HOOK.split("/")[-2] not in masked


def test_sarif_carries_the_rules_metadata(tmp_path: Path) -> None:
    _planted(tmp_path)
    result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False))
    doc = sarif.sarif_document(result, [str(tmp_path)])
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    for rule_id in ("github-token", "gitlab-token", "huggingface-token", "slack-webhook",
                    "wandb-api-key", "kaggle-api-key"):
        assert rules[rule_id]["helpUri"].startswith("https://")
        assert rules[rule_id]["fullDescription"]["text"]
    assert rules["github-token"]["properties"]["security-severity"] == "9.5"


def test_explain_json_validates_and_verify_is_honest(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(files("keyscope").joinpath("schemas/explain-v1.json").read_text())
    for value in (*TOKENS.values(), SLACK_HOOK, TEAMS_HOOK, FLOW_HOOK, f"WANDB_API_KEY={WANDB}"):
        assert main(["explain", "--format", "json", value]) == 0
        out = capsys.readouterr().out
        jsonschema.validate(json.loads(out), schema)
        assert value[-12:] not in out
    # a webhook URL has no side-effect-free check (a request to it that is accepted posts)
    e = explain(SLACK_HOOK, NOW, verify=VerifyOptions())[0]
    assert e.verification is not None and e.verification.status == "not-verifiable"
    assert "keyscope never posts to it" in e.verification.summary


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="ghpsr_xobaptkeAZaz09-.glpat", max_size=120))
def test_hostile_values_never_raise(value: str) -> None:
    assert isinstance(read_token(value), (str, object))
    assert token_candidates(value, lambda: value, NOW) is not None
