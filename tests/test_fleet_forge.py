"""Targets at scale: ``--targets FILE`` and ``github:ORG`` / ``gitlab:GROUP`` listed
through a forge API replayed on loopback (``tests/forge_server.py``): pages followed
through ``Link``, rate-limit headers and secondary rate limits honoured (the waits
are recorded by an injected clock), forks and archived repositories left out unless
asked for, and the guard of ``verify/transport.py`` in front of every request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscope.errors import KeyscopeError
from keyscope.fleet.forge import ForgeOptions, list_repositories
from keyscope.fleet.targets import expand_targets, read_targets
from tests import tokens
from tests.forge_server import Forge, forge_server
from tests.test_startup import DASK, _loaded

ROOT = Path(__file__).resolve().parents[1]
SECONDARY = b'{"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}'


def gh(name: str, *, fork: bool = False, archived: bool = False) -> dict[str, Any]:
    return {"full_name": f"acme/{name}", "fork": fork, "archived": archived,
            "clone_url": f"https://github.example/acme/{name}.git"}  # fmt: skip


class Clock:
    """A clock that only sleeping moves: the waits asked for, without waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def options(forge: Forge, clock: Clock, **kw: Any) -> ForgeOptions:
    return ForgeOptions(api=forge.url, allow_internal=True, sleep=clock.sleep,
                        clock=lambda: clock.now, **kw)  # fmt: skip


def test_github_pages_rate_limits_forks_and_archived(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_test_token_value")
    forge = Forge(pages={"/orgs/acme/repos": [
        [gh("one"), gh("fork", fork=True), gh("old", archived=True)], [gh("two")], [gh("three")],
    ]})  # fmt: skip
    # no request left after the first page: the next one waits for the reset
    forge.headers["/orgs/acme/repos?page=1"] = {
        "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1100"}
    # then a secondary rate limit, with Retry-After
    forge.refusals["/orgs/acme/repos?page=2"] = (403, {"Retry-After": "7"}, SECONDARY)
    clock = Clock()
    with forge_server(forge):
        urls = list_repositories("github", "acme", options(forge, clock))
        requests = list(forge.requests)
        forge.requests.clear()
        everything = list_repositories(
            "github", "acme", options(forge, clock, include_forks=True, include_archived=True)
        )
    assert urls == [f"https://github.example/acme/{n}.git" for n in ("one", "two", "three")]
    assert len(everything) == 5
    assert clock.slept[:2] == [101.0, 7.0]  # until the reset (plus a second), then Retry-After
    assert [path for path, _ in requests] == [
        "/orgs/acme/repos?per_page=100&type=all",
        "/orgs/acme/repos?per_page=100&page=2", "/orgs/acme/repos?per_page=100&page=2",
        "/orgs/acme/repos?per_page=100&page=3",
    ]  # fmt: skip
    headers = requests[0][1]
    assert headers["authorization"] == "Bearer ghp_test_token_value"
    assert headers["x-github-api-version"] == "2022-11-28"


def test_a_secondary_rate_limit_without_retry_after_waits_a_minute() -> None:
    forge = Forge(pages={"/orgs/acme/repos": [[gh("one")]]})
    forge.refusals["/orgs/acme/repos?page=1"] = (403, {}, SECONDARY)
    clock = Clock()
    with forge_server(forge):
        assert len(list_repositories("github", "acme", options(forge, clock))) == 1
    assert clock.slept == [60.0]


def test_a_user_is_listed_when_no_organisation_has_the_name() -> None:
    forge = Forge(pages={"/users/solo/repos": [[gh("mine")]]})
    with forge_server(forge):
        urls = list_repositories("github", "solo", options(forge, Clock()))
    assert urls == ["https://github.example/acme/mine.git"]
    assert [p.split("?")[0] for p, _ in forge.requests] == ["/orgs/solo/repos", "/users/solo/repos"]


def test_gitlab_group_with_subgroups_429_and_its_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-test-token")

    def project(name: str, fork: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"path_with_namespace": f"team/sub/{name}", "archived": False,
                               "http_url_to_repo": f"https://gitlab.example/team/sub/{name}.git"}
        if fork:
            out["forked_from_project"] = {"id": 1}
        return out

    path = "/api/v4/groups/team%2Fsub/projects"
    forge = Forge(pages={path: [[project("a"), project("f", fork=True)], [project("b")]]})
    forge.refusals[f"{path}?page=2"] = (429, {"Retry-After": "3", "RateLimit-Remaining": "0"}, b"")
    forge.headers[f"{path}?page=1"] = {"RateLimit-Remaining": "599", "RateLimit-Reset": "1"}
    clock = Clock()
    with forge_server(forge):
        opts = ForgeOptions(api=forge.url + "/api/v4", allow_internal=True, sleep=clock.sleep,
                            clock=lambda: clock.now)  # fmt: skip
        urls = list_repositories("gitlab", "team/sub", opts)
    assert urls == ["https://gitlab.example/team/sub/a.git", "https://gitlab.example/team/sub/b.git"]
    assert clock.slept == [3.0]
    first, headers = forge.requests[0]
    assert "include_subgroups=true" in first and "archived=false" in first
    assert headers["private-token"] == "glpat-test-token"


def test_the_guard_refuses_an_internal_api_unless_allowed() -> None:
    forge = Forge(pages={"/orgs/acme/repos": [[gh("one")]]})
    with forge_server(forge), pytest.raises(KeyscopeError, match="--allow-internal"):
        list_repositories("github", "acme", ForgeOptions(api=forge.url))
    assert forge.requests == []


@pytest.mark.parametrize("case", ["other-host", "bad-token", "long-wait"])
def test_listing_failures_end_with_a_reason(case: str) -> None:
    forge = Forge(pages={"/orgs/acme/repos": [[gh("one")], [gh("two")]]})
    if case == "other-host":
        forge.next_host = "http://127.0.0.2:9"
    elif case == "bad-token":
        forge.refusals["/orgs/acme/repos?page=1"] = (401, {}, b'{"message": "Bad credentials"}')
    else:
        forge.refusals["/orgs/acme/repos?page=1"] = (
            403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "999999"}, b"{}")
    expected = {"other-host": "another host", "bad-token": "GITHUB_TOKEN",
                "long-wait": "longer than"}[case]  # fmt: skip
    with forge_server(forge), pytest.raises(KeyscopeError, match=expected):
        list_repositories("github", "acme", options(forge, Clock()))


def test_a_target_file_has_one_target_a_line_and_comments(tmp_path: Path) -> None:
    listed = tmp_path / "targets.txt"
    listed.write_text("# our estate\n\n./app  # the app\n  https://x.example/r.git\n./app\n")
    assert read_targets(listed) == ["./app", "https://x.example/r.git", "./app"]
    assert expand_targets(read_targets(listed), ForgeOptions()) == [
        "./app", "https://x.example/r.git"]
    with pytest.raises(KeyscopeError, match="cannot be read"):
        read_targets(tmp_path / "missing.txt")


def _bare(folder: Path, name: str, text: str) -> None:
    """A repository with one commit, as a bare clone served over dumb HTTP."""
    work = folder / f"{name}-work"
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}  # fmt: skip
    for args in (["init", "-q", "-b", "main", str(work)],):
        subprocess.run(["git", *args], check=True, capture_output=True)
    (work / "config.env").write_text(text)
    for args in (["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(work), *args], check=True, capture_output=True, env=env)
    bare = folder / f"{name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)


def test_scan_github_org_clones_and_scans_each_listed_repository(tmp_path: Path) -> None:
    secrets = {name: tokens.github() for name in ("api", "web", "forked")}
    for name, secret in secrets.items():
        _bare(tmp_path, name, f"GH_TOKEN={secret}\n")
    forge = Forge(repos=tmp_path)
    with forge_server(forge):
        def repo(name: str, fork: bool = False) -> dict[str, Any]:
            return {"fork": fork, "archived": False, "clone_url": f"{forge.url}/git/{name}.git"}

        forge.pages["/orgs/acme/repos"] = [[repo("api"), repo("forked", fork=True)], [repo("web")]]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
               "XDG_CACHE_HOME": str(tmp_path / "cache"), "GITHUB_TOKEN": ""}  # fmt: skip
        base = [sys.executable, "-m", "keyscope", "scan", "github:acme", "--forge-api",
                forge.url, "--format", "json", "--show-secrets", "--fail-on", "never"]
        refused = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
        done = subprocess.run([*base, "--allow-internal"], capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "--allow-internal" in refused.stderr
    assert done.returncode == 0, done.stderr
    found = {loc["secret"] for f in json.loads(done.stdout)["findings"] for loc in f["locations"]}
    assert found == {secrets["api"], secrets["web"]}  # the fork is left out


def test_a_target_list_without_cluster_never_imports_dask(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("# nothing\n")
    listed = tmp_path / "targets.txt"
    listed.write_text(f"{tmp_path / 'a.txt'}\n")
    loaded = _loaded("scan", "-q", "--no-git", "--targets", str(listed))
    assert "keyscope.fleet.targets" in loaded  # the probe sees the target list read
    assert not loaded & DASK
