"""Provenance by content, on real repositories made with git: a secret's location
follows the secret at a path (edits of other lines, renames, merges, reverts,
cherry-picks), paths are read NUL-safe, and a shallow clone says where it is cut."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keyscope.cli import main
from keyscope.model import GitProvenance, Location, ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.sources.git import Selection
from tests.sdk import NOW, new_key
from tests.test_git_history import ALICE, BOB, CAROL, Repo, sas_url

SECRET = sas_url("provenanceacct", new_key(), datetime(2040, 1, 1, tzinfo=UTC))


def run(target: Path | str) -> ScanResult:
    return scan([str(target)], ScanOptions(jobs=1, now=NOW))


def locations(result: ScanResult) -> dict[str, Location]:
    """path (relative to the repository) → the one location of the one finding."""
    (finding,) = result.findings
    out: dict[str, Location] = {}
    for loc in finding.locations:
        rel = loc.path.split("/repo/", 1)[1]
        assert rel not in out, f"two locations for {rel}"
        out[rel] = loc
    return out


def git_of(loc: Location) -> GitProvenance:
    assert loc.git is not None
    return loc.git


def config_file(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


BEFORE = ["# settings", "name = demo"]
AFTER = ["retries = 3", "# end"]


def new_repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.path.mkdir(parents=True)
    repo.git("init", "-q", "-b", "main")
    repo.write("README.md", "hello\n")
    repo.commit("init", "init", ALICE, "2024-01-01T00:00:00+00:00")
    return repo


def test_editing_another_line_is_not_a_removal(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    repo = new_repo(tmp_path)
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))
    repo.commit("add", "add config", ALICE, "2024-02-01T00:00:00+00:00")
    repo.write("app.cfg", config_file([*BEFORE, "debug = no", f"url = {SECRET}", *AFTER]))
    repo.commit("edit", "turn debug off", BOB, "2024-03-01T00:00:00+00:00")
    locs = locations(run(repo.path))
    assert list(locs) == ["app.cfg"]
    g = git_of(locs["app.cfg"])
    assert g.commit == repo.commits["add"] and (g.author, g.email) == ALICE
    assert g.present_at_head and not g.removed_from_head
    assert g.removed_in is None and g.last_present is None
    assert locs["app.cfg"].line == 4  # shown from the blob at HEAD
    assert main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", str(repo.path)]) == 1
    text = capsys.readouterr().out
    assert "still at HEAD" in text and "gone from HEAD" not in text
    main(["scan", "-j", "1", "--format", "sarif", str(repo.path)])
    (result,) = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert result["properties"]["removedFromHead"] is False
    assert result["properties"]["commit"] == repo.commits["add"]


def test_removal_after_edits_names_the_removing_commit(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}"]))
    repo.commit("add", "add", ALICE, "2024-02-01T00:00:00+00:00")
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))
    repo.commit("edit", "edit", BOB, "2024-03-01T00:00:00+00:00")
    repo.write("app.cfg", config_file([*BEFORE, "url = from the vault", *AFTER]))
    repo.commit("remove", "remove", CAROL, "2024-04-01T00:00:00+00:00")
    g = git_of(locations(run(repo.path))["app.cfg"])
    assert g.commit == repo.commits["add"]
    assert g.removed_in == repo.commits["remove"] and g.removed_by == CAROL[0]
    assert g.last_present == repo.commits["edit"]
    assert g.removed_from_head and not g.present_at_head


def test_rename_is_one_location_per_path(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    repo.write("old.cfg", config_file([*BEFORE, f"url = {SECRET}"]))
    repo.commit("add", "add", ALICE, "2024-02-01T00:00:00+00:00")
    repo.git("mv", "old.cfg", "new.cfg")
    repo.write("new.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))  # and edited
    repo.commit("rename", "rename", BOB, "2024-03-01T00:00:00+00:00")
    locs = locations(run(repo.path))
    assert set(locs) == {"old.cfg", "new.cfg"}
    old, new = git_of(locs["old.cfg"]), git_of(locs["new.cfg"])
    assert old.commit == repo.commits["add"] and old.removed_in == repo.commits["rename"]
    assert new.commit == repo.commits["rename"] and new.present_at_head


def test_merge_of_parallel_edits_keeps_the_branch_introduction(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    repo.write("app.cfg", config_file([*BEFORE, "url = none", *AFTER]))
    repo.commit("base", "base", ALICE, "2024-02-01T00:00:00+00:00")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))
    repo.commit("leak", "leak on a branch", CAROL, "2024-02-10T00:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.write("app.cfg", config_file(["# main's header", *BEFORE, "url = none", *AFTER]))
    repo.commit("main-edit", "edit on main", BOB, "2024-02-15T00:00:00+00:00")
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature", author=BOB,
             date="2024-02-20T00:00:00+00:00")
    locs = locations(run(repo.path))
    g = git_of(locs["app.cfg"])
    assert g.commit == repo.commits["leak"] and (g.author, g.email) == CAROL
    assert g.present_at_head and g.removed_in is None


def test_revert_of_the_introduction_is_the_removal(tmp_path: Path) -> None:
    filler = [f"option{i} = {i}" for i in range(8)]
    repo = new_repo(tmp_path)
    repo.write("app.cfg", config_file(["# v1", *filler, "url = none"]))
    repo.commit("base", "base", ALICE, "2024-02-01T00:00:00+00:00")
    repo.write("app.cfg", config_file(["# v1", *filler, f"url = {SECRET}"]))
    repo.commit("leak", "leak", ALICE, "2024-02-10T00:00:00+00:00")
    repo.write("app.cfg", config_file(["# v2", *filler, f"url = {SECRET}"]))
    repo.commit("edit", "edit", BOB, "2024-02-15T00:00:00+00:00")
    repo.git("revert", "--no-edit", repo.commits["leak"], author=BOB,
             date="2024-02-20T00:00:00+00:00")
    revert = repo.git("rev-parse", "HEAD")
    assert SECRET not in (repo.path / "app.cfg").read_text()
    g = git_of(locations(run(repo.path))["app.cfg"])
    assert g.commit == repo.commits["leak"]
    assert g.removed_in == revert and g.last_present == repo.commits["edit"]
    # and reverting the revert brings it back: still at HEAD, nothing removed
    repo.git("revert", "--no-edit", "HEAD", author=BOB, date="2024-02-25T00:00:00+00:00")
    g = git_of(locations(run(repo.path))["app.cfg"])
    assert g.commit == repo.commits["leak"] and g.present_at_head and g.removed_in is None


def test_cherry_pick_keeps_the_first_appearance(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    repo.write("app.cfg", config_file([*BEFORE, "url = none"]))
    repo.commit("base", "base", ALICE, "2024-02-01T00:00:00+00:00")
    repo.git("checkout", "-q", "-b", "hotfix")
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}"]))
    repo.commit("leak", "leak", CAROL, "2024-02-10T00:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.git("cherry-pick", repo.commits["leak"], author=BOB, date="2024-02-12T00:00:00+00:00")
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))
    repo.commit("edit", "edit", BOB, "2024-02-15T00:00:00+00:00")
    g = git_of(locations(run(repo.path))["app.cfg"])
    assert g.commit == repo.commits["leak"] and g.present_at_head


def test_non_ascii_path_at_head_is_still_at_head(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    repo.write("café/réglages.env", f"URL={SECRET}\n")
    repo.commit("add", "add", ALICE, "2024-02-01T00:00:00+00:00")
    locs = locations(run(repo.path))
    assert list(locs) == ["café/réglages.env"]
    g = git_of(locs["café/réglages.env"])
    assert g.present_at_head and not g.removed_from_head and g.commit == repo.commits["add"]


def test_shallow_clone_says_where_the_history_is_cut(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    upstream = new_repo(tmp_path / "up")
    upstream.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}"]))
    upstream.commit("add", "add", ALICE, "2024-02-01T00:00:00+00:00")
    upstream.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))
    upstream.commit("edit", "edit", BOB, "2024-03-01T00:00:00+00:00")
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{upstream.path}", str(clone)],
                   check=True)
    tip = upstream.commits["edit"]
    result = run(clone)
    assert result.history_cut == {str(clone): [tip]}
    g = git_of(locations(result)["app.cfg"])
    assert g.commit == tip and g.at_boundary and g.present_at_head

    assert main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", str(clone)]) == 1
    text = capsys.readouterr().out
    assert f"present at {tip[:10]}, where the history is cut" in text
    assert "introduced in" not in text
    assert f"history cut at commit {tip[:10]}" in text
    main(["scan", "-j", "1", "--format", "json", str(clone)])
    doc = json.loads(capsys.readouterr().out)
    assert doc["history_cut"] == [{"repository": str(clone), "commits": [tip]}]
    assert doc["findings"][0]["locations"][0]["git"]["at_boundary"] is True
    main(["scan", "-j", "1", "--format", "sarif", str(clone)])
    sarif = json.loads(capsys.readouterr().out)["runs"][0]
    # relative to the scanned root, as every SARIF path is: no local path
    assert sarif["properties"]["historyCut"] == [{"repository": ".", "commits": [tip]}]
    assert sarif["results"][0]["properties"]["presentAtBoundary"] is True
    # a complete repository says nothing of the kind
    assert run(upstream.path).history_cut == {}


def test_partial_scan_follows_versions_outside_the_part(tmp_path: Path) -> None:
    """--since REV: the secret was committed before REV and an edit after REV kept it
    (and removed another secret, which is outside the part).
    The older version is outside what was scanned, yet the location names the commit
    that brought the secret in, not the edit."""
    repo = new_repo(tmp_path)
    older = sas_url("olderacct", new_key(), datetime(2040, 1, 1, tzinfo=UTC))
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", f"old = {older}"]))
    repo.commit("add", "add", ALICE, "2024-02-01T00:00:00+00:00")
    repo.write("other.txt", "x\n")
    repo.commit("mark", "mark", ALICE, "2024-02-05T00:00:00+00:00")
    repo.write("app.cfg", config_file([*BEFORE, f"url = {SECRET}", *AFTER]))
    repo.commit("edit", "edit", BOB, "2024-03-01T00:00:00+00:00")
    for selection in (Selection(since=repo.commits["mark"]),
                      Selection(revision_range=f"{repo.commits['mark']}..main")):
        result = scan([str(repo.path)], ScanOptions(jobs=1, now=NOW, selection=selection))
        # one finding: the older secret, gone before the part, stays unreported
        g = git_of(locations(result)["app.cfg"])
        assert g.commit == repo.commits["add"] and g.present_at_head


def test_the_history_walk_starts_at_the_first_finding_and_ends_with_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # git writes the walk while the rest of the history is scanned; the provenance
    # read from it is what a walk at the end gives; nothing outlives the scan
    from keyscope.sources import git_provenance as gp

    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    repo.write("a.txt", "hello\n")
    repo.commit("init", "init", ALICE, "2024-01-01T00:00:00+00:00")
    repo.write("cfg.env", f"URL={SECRET}\n")
    repo.commit("leak", "add config", BOB, "2024-02-01T00:00:00+00:00")
    repo.write("cfg.env", "URL=\n")
    repo.commit("fix", "remove config", CAROL, "2024-03-01T00:00:00+00:00")
    read: list[int] = []
    real = gp._Prefetch.output

    def output(self: gp._Prefetch) -> object:
        read.append(1)
        return real(self)

    monkeypatch.setattr(gp._Prefetch, "output", output)
    early = git_of(locations(run(repo.path))["cfg.env"])
    assert read == [1] and gp._PREFETCHED == {}
    monkeypatch.setattr(gp, "prefetch", lambda repo: None)  # the walk at the end
    monkeypatch.setattr("keyscope.sources.history.prefetch", lambda repo: None)
    late = git_of(locations(run(repo.path))["cfg.env"])
    assert read == [1]
    assert early == late
    assert (early.commit, early.removed_in) == (repo.commits["leak"], repo.commits["fix"])


def test_an_early_walk_nobody_reads_is_stopped(tmp_path: Path) -> None:
    from keyscope.sources import git_provenance as gp

    repo = Repo(tmp_path / "repo")
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    repo.write("a.txt", "hello\n")
    repo.commit("init", "init", ALICE, "2024-01-01T00:00:00+00:00")
    gp.prefetch(repo.path)
    early = gp._PREFETCHED[str(repo.path)]
    gp.drop_prefetched()
    assert gp._PREFETCHED == {} and early._proc.returncode is not None
    assert early._file.closed
