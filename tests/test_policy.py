"""The severity policy: default verdicts on SDK-signed credentials, and configuration from
``keyscope.toml`` / ``pyproject.toml`` (library and ``--config``)."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)

import keyscope
from keyscope import Explanation, Severity
from keyscope.analyze.policy import DEFAULT_POLICY, Policy
from keyscope.cli import main
from keyscope.config import load_policy
from keyscope.errors import ConfigError

KEY = base64.b64encode(os.urandom(64)).decode("ascii")
ACCOUNT = "policytest01"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = START + timedelta(minutes=10)
NOW_ISO = "2025-01-01T00:10:00Z"
BLOB_HOST = f"https://{ACCOUNT}.blob.core.windows.net"


# --- tokens ------------------------------------------------------------------------------------


def incident_sas() -> str:
    """The shape of the 2023 "38 TB" token: full-control account SAS until 2051, http allowed."""
    return generate_account_sas(
        ACCOUNT,
        KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True,
            write=True,
            delete=True,
            list=True,
            add=True,
            create=True,
            update=True,
            process=True,
        ),
        expiry=datetime(2051, 10, 6, 7, 9, 59, tzinfo=UTC),
        start=datetime(2021, 10, 5, 23, 9, 59, tzinfo=UTC),
        services="bfqt",
        protocol="https,http",
    )


def container_read_list_7d() -> str:
    return f"{BLOB_HOST}/data?" + generate_container_sas(
        ACCOUNT,
        "data",
        KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=START + timedelta(days=7),
        start=START,
    )


def blob_read(lifetime: timedelta, protocol: str | None = "https") -> str:
    kwargs = {"protocol": protocol} if protocol else {}
    return f"{BLOB_HOST}/models/w.pt?" + generate_blob_sas(
        ACCOUNT,
        "models",
        "w.pt",
        account_key=KEY,
        permission=BlobSasPermissions(read=True),
        expiry=START + lifetime,
        start=START,
        **kwargs,
    )


BLOB_30_MIN = blob_read(timedelta(minutes=30))
BLOB_2_DAYS = blob_read(timedelta(days=2))
BLOB_30_MIN_HTTP = blob_read(timedelta(minutes=30), protocol=None)


def one(text: str, now: datetime = NOW, **kwargs: object) -> Explanation:
    result = keyscope.explain(text, now, keys=(KEY,), **kwargs)  # type: ignore[arg-type]
    assert len(result) == 1
    return result[0]


def codes(e: Explanation) -> set[str]:
    return {r.code for r in e.reasons}


# --- default policy ----------------------------------------------------------------------------


def test_incident_shaped_account_sas_is_critical() -> None:
    query = incident_sas()
    assert "ss=bfqt" in query and "srt=sco" in query and "sp=rwdlacup" in query
    assert "spr=https%2Chttp" in query
    e = one(f"{BLOB_HOST}/?{query}", now=datetime(2023, 6, 22, tzinfo=UTC))
    assert e.signature.status == "signed-with-key"
    assert e.access.kind == "account-sas"
    assert e.severity == Severity.CRITICAL
    assert {
        "write",
        "delete",
        "account-control",
        "anti-forensics",
        "wide-read",
        "account-sas",
        "long-lifetime",
        "http-allowed",
        "live",
    } <= codes(e)
    assert "expired" not in codes(e)
    assert e.reasons[0].severity == Severity.CRITICAL
    # Reasons are sorted most severe first.
    assert [r.severity for r in e.reasons] == sorted((r.severity for r in e.reasons), reverse=True)
    assert {"overwrite", "delete", "account-control", "anti-forensics"} <= set(e.access.destructive)


def test_incident_sas_without_url_is_still_critical() -> None:
    e = one(incident_sas(), now=datetime(2023, 6, 22, tzinfo=UTC), account=ACCOUNT)
    assert e.signature.status == "signed-with-key"
    assert e.severity == Severity.CRITICAL


def test_read_list_container_sas_for_7_days_is_high() -> None:
    e = one(container_read_list_7d())
    assert e.access.scope.level == "container"
    assert e.severity == Severity.HIGH
    assert "wide-read" in codes(e)
    assert {"write", "delete"}.isdisjoint(codes(e))
    high = [r for r in e.reasons if r.severity == Severity.HIGH]
    assert [r.code for r in high] == ["wide-read"]


def test_read_only_blob_sas_30_minutes_https_is_low() -> None:
    e = one(BLOB_30_MIN)
    assert e.access.scope.level == "blob"
    assert e.access.network.protocols == ("https",)
    assert e.access.validity.lifetime_seconds == 30 * 60
    assert e.severity == Severity.LOW
    assert codes(e) == {"live"}


def test_read_only_blob_sas_2_days_is_medium() -> None:
    e = one(BLOB_2_DAYS)
    assert e.access.validity.lifetime_seconds == 2 * 86400
    assert e.severity == Severity.MEDIUM
    assert codes(e) == {"long-lifetime", "live"}
    (long,) = [r for r in e.reasons if r.code == "long-lifetime"]
    assert long.severity == Severity.MEDIUM
    assert "2 days" in long.message


def test_http_allowed_is_a_reason() -> None:
    e = one(BLOB_30_MIN_HTTP)
    assert e.access.network.protocols == ("https", "http")
    assert e.severity == Severity.LOW
    assert codes(e) == {"http-allowed", "live"}


def test_expired_token_is_low_even_with_write_and_delete() -> None:
    url = f"{BLOB_HOST}/data?" + generate_container_sas(
        ACCOUNT,
        "data",
        KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=START + timedelta(days=7),
        start=START,
    )
    live = one(url)
    assert live.severity == Severity.CRITICAL
    e = one(url, now=START + timedelta(days=30))
    assert e.access.validity.expired is True
    assert e.severity == Severity.LOW
    assert "expired" in codes(e)
    assert "live" not in codes(e)


def test_expired_incident_sas_is_low() -> None:
    e = one(f"{BLOB_HOST}/?{incident_sas()}", now=datetime(2052, 1, 1, tzinfo=UTC))
    assert e.severity == Severity.LOW
    assert "expired" in codes(e)


def test_account_key_is_critical() -> None:
    e = one(KEY, account=ACCOUNT)
    assert e.access.kind == "account-key"
    assert e.severity == Severity.CRITICAL
    assert "account-key" in codes(e)
    cs = f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={KEY}"
    assert one(cs).severity == Severity.CRITICAL
    # a key reads everything until it is rotated: said so, not "for unknown"
    wide = next(r.message for r in e.reasons if r.code == "wide-read")
    assert wide == "reads and lists all data and settings of the account with no expiry"


def test_public_dev_key_is_info() -> None:
    e = one(DEV_KEY)
    assert e.access.kind == "public-dev-key"
    assert e.severity == Severity.INFO
    assert "emulator" in codes(e)
    assert one("UseDevelopmentStorage=true").severity == Severity.INFO


def test_sas_signed_with_public_dev_key_is_info() -> None:
    sas = generate_account_sas(
        "devstoreaccount1",
        DEV_KEY,
        resource_types="sco",
        permission="rwdl",
        expiry=datetime(2051, 1, 1, tzinfo=UTC),
        services="bfqt",
    )
    e = one(f"http://127.0.0.1:10000/devstoreaccount1?{sas}")
    assert e.signature.status == "signed-with-key"
    assert e.severity == Severity.INFO


def test_stored_policy_sas_has_hidden_lifetime() -> None:
    url = f"{BLOB_HOST}/data?" + generate_container_sas(ACCOUNT, "data", KEY, policy_id="readers")
    e = one(url)
    assert e.access.kind == "service-policy-sas"
    assert "hidden-lifetime" in codes(e)
    assert e.severity == Severity.MEDIUM


# --- configuration files -----------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=["keyscope.toml", "pyproject.toml"])
def config_file(request: pytest.FixtureRequest, tmp_path: Path):
    """Write a policy table to keyscope.toml ([policy]) or pyproject.toml
    ([tool.keyscope.policy]); returns a function body → path."""
    name: str = request.param

    def make(body: str) -> Path:
        if name == "keyscope.toml":
            text = "[policy]\n" + body
        else:
            text = '[project]\nname = "x"\n\n[tool.keyscope.policy]\n' + body
        # [policy.severity] sub-tables in the body are written relative to the policy table.
        prefix = "[policy." if name == "keyscope.toml" else "[tool.keyscope.policy."
        text = text.replace("[.", prefix)
        return write(tmp_path / name, text)

    return make


def test_max_lifetime_3d_makes_2_day_sas_low(config_file) -> None:
    policy = load_policy(config_file('max-lifetime = "3d"\n'))
    assert isinstance(policy, Policy)
    assert policy.max_lifetime == 3 * 86400
    assert one(BLOB_2_DAYS).severity == Severity.MEDIUM
    e = one(BLOB_2_DAYS, policy=policy)
    assert e.severity == Severity.LOW
    assert "long-lifetime" not in codes(e)
    # A token over the new limit is still flagged.
    e = one(blob_read(timedelta(days=4)), policy=policy)
    assert "long-lifetime" in codes(e)
    assert e.severity == Severity.MEDIUM


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3600", 3600), ('"90m"', 5400), ('"1h"', 3600), ('"7d"', 604800), ('"2w"', 1209600)],
)
def test_duration_forms(config_file, value: str, seconds: int) -> None:
    policy = load_policy(config_file(f"max-lifetime = {value}\nwide-read-max-lifetime = {value}\n"))
    assert policy.max_lifetime == seconds
    assert policy.wide_read_max_lifetime == seconds


def test_severity_off_removes_http_allowed(config_file) -> None:
    assert "http-allowed" in codes(one(BLOB_30_MIN_HTTP))
    policy = load_policy(config_file('[.severity]\nhttp-allowed = "off"\n'))
    e = one(BLOB_30_MIN_HTTP, policy=policy)
    assert "http-allowed" not in codes(e)
    assert codes(e) == {"live"}


def test_severity_override_raises_a_rule(config_file) -> None:
    policy = load_policy(config_file('[.severity]\nhttp-allowed = "high"\n'))
    e = one(BLOB_30_MIN_HTTP, policy=policy)
    assert e.severity == Severity.HIGH
    (http,) = [r for r in e.reasons if r.code == "http-allowed"]
    assert http.severity == Severity.HIGH


def test_require_https_false(config_file) -> None:
    policy = load_policy(config_file("require-https = false\n"))
    assert policy.require_https is False
    assert "http-allowed" not in codes(one(BLOB_30_MIN_HTTP, policy=policy))


def test_allow_account_sas(config_file) -> None:
    policy = load_policy(config_file("allow-account-sas = true\n"))
    e = one(incident_sas(), account=ACCOUNT, policy=policy)
    assert "account-sas" not in codes(e)
    assert e.severity == Severity.CRITICAL


def test_wide_read_limit(config_file) -> None:
    policy = load_policy(config_file('wide-read-max-lifetime = "8d"\n'))
    e = one(container_read_list_7d(), policy=policy)
    assert "wide-read" not in codes(e)
    assert e.severity == Severity.MEDIUM


def test_pyproject_without_keyscope_section_is_default(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert load_policy(path) == DEFAULT_POLICY


def test_policy_found_upwards(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "keyscope.toml", '[policy]\nmax-lifetime = "3d"\n')
    sub = tmp_path / "pkg" / "src"
    sub.mkdir(parents=True)
    # A nearer pyproject.toml without a keyscope section does not hide it.
    write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "pkg"\n')
    assert load_policy(start=sub).max_lifetime == 3 * 86400


def test_nearer_pyproject_section_wins(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "keyscope.toml", '[policy]\nmax-lifetime = "3d"\n')
    sub = tmp_path / "pkg"
    sub.mkdir()
    write(sub / "pyproject.toml", '[tool.keyscope.policy]\nmax-lifetime = "5h"\n')
    assert load_policy(start=sub).max_lifetime == 5 * 3600


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('max-lifetim = "3d"\n', ["max-lifetim"]),
        ('max-lifetime = "3 days"\n', ["max-lifetime", "3 days"]),
        ('max-lifetime = "-1h"\n', ["max-lifetime"]),
        ("max-lifetime = 0\n", ["max-lifetime"]),
        ("max-lifetime = true\n", ["max-lifetime"]),
        ('wide-read-max-lifetime = "soon"\n', ["wide-read-max-lifetime", "soon"]),
        ('require-https = "yes"\n', ["require-https"]),
        ("allow-account-sas = 1\n", ["allow-account-sas"]),
        ('[.severity]\nwrite = "urgent"\n', ["write", "urgent"]),
        ("[.severity]\nhttp-allowed = 3\n", ["http-allowed"]),
        ('[.severity]\nno-such-rule = "low"\n', ["no-such-rule"]),
    ],
)
def test_invalid_settings_raise_config_error(config_file, body: str, names: list[str]) -> None:
    path = config_file(body)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    message = str(info.value)
    for name in names:
        assert name in message, message


@pytest.mark.parametrize("body", ['severity = "high"\n', "severity = 3\n"])
def test_severity_must_be_a_table(config_file, body: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(config_file(body))
    assert "severity" in str(info.value)


def test_policy_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(write(tmp_path / "keyscope.toml", 'policy = "strict"\n'))
    assert "policy" in str(info.value)


def test_tool_keyscope_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(write(tmp_path / "pyproject.toml", '[tool]\nkeyscope = "on"\n'))
    assert "keyscope" in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "keyscope.toml", "[policy\nmax-lifetime = \n")
    with pytest.raises(ConfigError, match="TOML"):
        load_policy(bad)
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "missing.toml")
    assert "missing.toml" in str(info.value)


# --- the CLI's --config ------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["explain", "--now", NOW_ISO, "--format", "json", "--key", KEY, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no policy file above it (the .git stops the search)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".git").mkdir()
    monkeypatch.chdir(work)
    return work


def test_cli_config_flag(
    capsys: pytest.CaptureFixture[str], isolated_cwd: Path, config_file
) -> None:
    code, out, err = run_cli(capsys, BLOB_2_DAYS)
    assert code == 0, err
    (cred,) = json.loads(out)["credentials"]
    assert cred["severity"] == "medium"
    assert "long-lifetime" in {r["code"] for r in cred["reasons"]}

    path = config_file('max-lifetime = "3d"\n[.severity]\nhttp-allowed = "off"\n')
    code, out, err = run_cli(capsys, "--config", str(path), BLOB_2_DAYS)
    assert code == 0, err
    (cred,) = json.loads(out)["credentials"]
    assert cred["severity"] == "low"
    assert {r["code"] for r in cred["reasons"]} == {"live"}

    code, out, err = run_cli(capsys, "--config", str(path), BLOB_30_MIN_HTTP)
    assert code == 0, err
    (cred,) = json.loads(out)["credentials"]
    assert "http-allowed" not in {r["code"] for r in cred["reasons"]}


def test_cli_finds_keyscope_toml_in_working_directory(
    capsys: pytest.CaptureFixture[str], isolated_cwd: Path
) -> None:
    write(isolated_cwd / "keyscope.toml", '[policy]\nmax-lifetime = "3d"\n')
    code, out, err = run_cli(capsys, BLOB_2_DAYS)
    assert code == 0, err
    assert json.loads(out)["credentials"][0]["severity"] == "low"


def test_cli_invalid_config_is_one_error_line(
    capsys: pytest.CaptureFixture[str], isolated_cwd: Path, config_file
) -> None:
    path = config_file('max-lifetime = "forever"\n')
    code, out, err = run_cli(capsys, "--config", str(path), BLOB_2_DAYS)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keyscope: error: ")
    assert "max-lifetime" in lines[0]


def test_cli_missing_config_file(capsys: pytest.CaptureFixture[str], isolated_cwd: Path) -> None:
    code, out, err = run_cli(capsys, "--config", str(isolated_cwd / "nope.toml"), BLOB_2_DAYS)
    assert code == 2
    assert out == ""
    assert err.startswith("keyscope: error: ")
    assert "nope.toml" in err
    assert len(err.splitlines()) == 1
