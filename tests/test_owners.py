"""Owners of a finding, on real repositories made with git: the commit's author and
committer, the repository's CODEOWNERS (GitHub and GitLab syntax; HEAD's file for a
history scan, the file on disk for a work tree), and the config's [owners] map, in
every output format."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from keyscope.cli import main
from keyscope.errors import ConfigError
from keyscope.owners.assign import OwnerResolver, assign_owners
from keyscope.owners.codeowners import compile_pattern, parse_codeowners
from keyscope.owners.config import load_owners, owners_from_mapping
from keyscope.scan import ScanOptions, scan
from tests.sdk import new_key
from tests.test_git_history import sas_url

SECRET = sas_url("ownersacct", new_key(), datetime(2040, 1, 1, tzinfo=UTC))
AUTHOR = ("Alice Author", "alice@contoso.example")
COMMITTER = ("Carl Committer", "carl@contoso.example")


def git(repo: Path, *args: str, author: tuple[str, str] = AUTHOR,
        committer: tuple[str, str] = COMMITTER) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0], "GIT_COMMITTER_EMAIL": committer[1],
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def write(repo: Path, name: str, text: str) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose HEAD holds a GitHub CODEOWNERS and a secret under deploy/,
    committed by someone other than its author."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", "https://github.com/acme/web.git")
    write(path, ".github/CODEOWNERS", "* @acme/everyone\n/deploy/ @acme/ops ops@contoso.example\n")
    write(path, "deploy/app.cfg", f"url = {SECRET}\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "add deploy config")
    return path


def scan_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    main(["scan", "-q", "-j", "1", "--format", "json", "--fail-on", "never", *args])
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(files("keyscope").joinpath("schemas/scan-v1.json").read_text())
    jsonschema.validate(doc, schema)
    return doc


def owners_of(doc: dict[str, object]) -> list[dict[str, object]]:
    findings = doc["findings"]
    assert isinstance(findings, list) and len(findings) == 1
    owners = findings[0]["owners"]
    assert isinstance(owners, list)
    return owners


def test_history_finding_names_author_committer_and_head_codeowners(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The work tree's CODEOWNERS is edited but not committed: history reads HEAD's.
    write(repo, ".github/CODEOWNERS", "* @someone/else\n")
    owners = owners_of(scan_json([str(repo)], capsys))
    by_name = {o["name"]: o for o in owners}
    commit = git(repo, "rev-parse", "HEAD")[:10]
    assert by_name["Alice Author"]["email"] == "alice@contoso.example"
    assert by_name["Alice Author"]["via"] == [f"author of {commit}"]
    assert by_name["Carl Committer"]["email"] == "carl@contoso.example"
    assert by_name["Carl Committer"]["via"] == [f"committer of {commit}"]
    assert by_name["@acme/ops"]["via"] == [".github/CODEOWNERS:2 /deploy/"]
    assert by_name["ops@contoso.example"]["email"] == "ops@contoso.example"
    # the last matching pattern wins: "*" does not add its owner
    assert "@acme/everyone" not in by_name
    assert "@someone/else" not in by_name


def test_work_tree_scan_reads_the_file_on_disk(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, ".github/CODEOWNERS", "* @acme/everyone\ndeploy/*.cfg @acme/config\n")
    owners = owners_of(scan_json(["--no-git", str(repo)], capsys))
    assert [o["name"] for o in owners] == ["@acme/config"]
    assert owners[0]["via"] == [".github/CODEOWNERS:2 deploy/*.cfg"]


def test_a_codeowners_link_is_not_followed(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("* @not/read\n")
    (repo / ".github" / "CODEOWNERS").unlink()
    (repo / ".github" / "CODEOWNERS").symlink_to(outside)
    assert owners_of(scan_json(["--no-git", str(repo)], capsys)) == []


def test_gitlab_sections_each_add_their_owners(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "gl"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, ".gitlab/CODEOWNERS", "\n".join([
        "* @everyone",
        "[Deploy] @deployers",
        "deploy/",
        "^[Security][2] @sec-team",
        "*.cfg @cfg-owners",
        "[deploy]",
        "deploy/app.cfg @release",
        "",
    ]))
    write(repo, "deploy/app.cfg", f"url = {SECRET}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "x")
    owners = owners_of(scan_json([str(repo)], capsys))
    via = {o["name"]: o["via"] for o in owners}
    # [deploy] is [Deploy] again: its last matching entry wins within the section
    assert via["@release"] == [".gitlab/CODEOWNERS:7 deploy/app.cfg [Deploy]"]
    assert "@deployers" not in via
    assert via["@everyone"] == [".gitlab/CODEOWNERS:1 *"]  # the unnamed section
    assert via["@cfg-owners"] == [".gitlab/CODEOWNERS:5 *.cfg [Security]"]


def test_config_map_adds_owners_by_account_repository_and_path(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = repo.parent / "keyscope.toml"
    config.write_text(
        '[owners.accounts]\n"owners*" = ["Storage Team <storage@contoso.example>"]\n'
        '"other" = "@never"\n'
        '[owners.repositories]\n"acme/web" = "@acme/web-team"\n'
        '[owners.paths]\n"deploy/**" = "platform"\n"docs/" = "@never"\n'
    )
    owners = owners_of(scan_json(["--config", str(config), str(repo)], capsys))
    via = {o["name"]: o["via"] for o in owners}
    assert via["Storage Team"] == ["[owners.accounts] owners*"]
    assert via["@acme/web-team"] == ["[owners.repositories] acme/web"]
    assert via["platform"] == ["[owners.paths] deploy/**"]
    assert "@never" not in via


def test_owners_in_text_jsonl_and_sarif(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["scan", "-q", "-j", "1", "--fail-on", "never", str(repo)]
    capsys.readouterr()
    main([*common, "--color", "never"])
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("owners:"))
    assert "Alice Author <alice@contoso.example>" in line and "@acme/ops" in line
    main([*common, "--format", "jsonl"])
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    finding = next(r for r in records if r["type"] == "finding")
    assert {o["name"] for o in finding["owners"]} >= {"Alice Author", "@acme/ops"}
    main([*common, "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    props = sarif["runs"][0]["results"][0]["properties"]
    assert "Carl Committer <carl@contoso.example>" in props["owners"]
    assert "@acme/ops" in props["owners"]


# GitHub's documented examples (about-code-owners): pattern, path, matches
GITHUB_CASES = [
    ("*.js", "src/app.js", True),
    ("*.js", "src/app.ts", False),
    ("/build/logs/", "build/logs/a/b.txt", True),
    ("/build/logs/", "x/build/logs/a.txt", False),
    ("docs/*", "docs/getting-started.md", True),
    ("docs/*", "docs/build-app/troubleshooting.md", False),
    ("apps/", "deep/apps/x.py", True),
    ("apps/", "apps", False),  # a file named apps is not the directory
    ("/docs/", "docs/a/b.md", True),
    ("**/logs", "deeply/nested/logs/x", True),
    ("/apps/github", "apps/github/a.rb", True),  # GitHub: a directory without its "/"
    ("/scripts/", "scripts/x.sh", True),
    ("README.md", "sub/README.md", True),
    ("/README.md", "sub/README.md", False),
    ("*", "a/b/c", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), GITHUB_CASES)
def test_github_patterns(pattern: str, path: str, expected: bool) -> None:
    glob = compile_pattern(pattern)
    assert glob is not None
    assert glob.matches(path) is expected


def test_gitlab_needs_the_slash_for_a_directory() -> None:
    glob = compile_pattern("/apps/github", gitlab=True)
    assert glob is not None and not glob.matches("apps/github/a.rb")
    ranged = compile_pattern("[a-c]x.py", gitlab=True)
    assert ranged is not None and ranged.matches("src/bx.py") and not ranged.matches("dx.py")


def test_last_match_wins_and_an_ownerless_pattern_unowns() -> None:
    co = parse_codeowners("/apps/ @octocat\n/apps/github\n*.md @docs # comment\n", "CODEOWNERS")
    assert co.match("apps/x.rb")[0].owners == ("@octocat",)
    assert co.match("apps/github/x.rb") == []
    assert co.match("apps/README.md")[0].owners == ("@docs",)
    # GitHub has no "!" negation: the line is skipped, not read as a pattern
    assert parse_codeowners("!x @a\n", ".github/CODEOWNERS").match("x") == []


def test_a_hostile_pattern_is_matched_without_backtracking() -> None:
    # As a backtracking regex this would take ages; the state walk is linear.
    glob = compile_pattern("*a" * 40 + "*b")
    assert glob is not None
    assert glob.matches("a" * 5000) is False


def test_config_errors_name_the_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[owners.paths\] 'x': give an owner"):
        owners_from_mapping({"paths": {"x": [42]}}, "k.toml")
    with pytest.raises(ConfigError, match="unknown table 'people'"):
        owners_from_mapping({"people": {}}, "k.toml")
    with pytest.raises(ConfigError, match="is not an owner"):
        owners_from_mapping({"accounts": {"a": "@"}}, "k.toml")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.keyscope.owners.accounts]\nacct = "@team"\n')
    assert load_owners(start=tmp_path).for_account("ACCT")[0].name == "@team"


def test_remote_repository_gets_committers_and_the_config_map(repo: Path, tmp_path: Path) -> None:
    url = f"file://{repo}"
    result = scan([url], ScanOptions(jobs=1, cache_dir=tmp_path / "cache"))
    owners_map = owners_from_mapping(
        {"paths": {"deploy/**": "platform"}, "repositories": {f"*{repo.name}": "@acme/repo"}},
        "k.toml",
    )
    assign_owners(result, OwnerResolver(owners_map, [url]))
    (finding,) = result.findings
    names = [o.name for o in finding.owners]
    assert names[:2] == ["Alice Author", "Carl Committer"]
    assert "platform" in names and "@acme/repo" in names
    assert "@acme/ops" not in names  # no mirror given: no CODEOWNERS


def test_remote_repository_reads_codeowners_from_its_mirror(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``keyscope scan URL``: the CODEOWNERS of HEAD in the mirror the scan made names
    the owners, as for a local history scan; the mirror's own config is not read for
    anything else."""
    url = f"file://{repo}"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    doc = scan_json([url], capsys)
    by_name = {o["name"]: o for o in owners_of(doc)}
    assert by_name["@acme/ops"]["via"] == [".github/CODEOWNERS:2 /deploy/"]
    assert by_name["ops@contoso.example"]["email"] == "ops@contoso.example"
    assert "Alice Author" in by_name and "@acme/everyone" not in by_name
