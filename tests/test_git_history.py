"""Git history scanning on real repositories made with git: the 2023 story, provenance,
timelines, incremental modes, baselines, inline ignores and the pre-commit hook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keyscope.cli import main
from keyscope.model import Finding, ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.sources.git import Selection
from tests.sdk import NOW, account_sas, new_key

ROOT = Path(__file__).resolve().parent.parent
ALICE = ("Alice Researcher", "alice@contoso.example")
BOB = ("Bob Maintainer", "bob@contoso.example")
CAROL = ("Carol Intern", "carol@contoso.example")


@dataclass
class Repo:
    path: Path
    commits: dict[str, str] = field(default_factory=dict)  # label -> commit id

    def git(self, *args: str, author: tuple[str, str] = ALICE, date: str | None = None) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1],
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
        }
        if date:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        out = subprocess.run(["git", "-C", str(self.path), *args], env=env, check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    def write(self, name: str, text: str | bytes) -> None:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)

    def commit(self, label: str, message: str, author: tuple[str, str], date: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, author=author, date=date)
        self.commits[label] = self.git("rev-parse", "HEAD")
        return self.commits[label]


def sas_url(account: str, key: str, expiry: datetime) -> str:
    sas = account_sas(account, key, expiry=expiry, start=datetime(2020, 7, 1, tzinfo=UTC),
                      protocol="https,http")
    return f"https://{account}.blob.core.windows.net/models/weights.ckpt?{sas}"


@dataclass
class Story:
    repo: Repo
    first_url: str
    second_url: str
    conn_key: str
    dangling_key: str


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """The 2023 leak as a history: committed 2020-07, expiry extended 2021-10, deleted."""
    path = tmp_path_factory.mktemp("robust-models")
    repo = Repo(path)
    repo.git("init", "-q", "-b", "main")
    key = new_key()
    first = sas_url("robustmodels", key, datetime(2021, 10, 6, tzinfo=UTC))
    second = sas_url("robustmodels", key, datetime(2051, 10, 6, tzinfo=UTC))
    conn_key = new_key()

    repo.write("README.md", "# Robust models\n\nWeights are coming soon.\n")
    repo.write("assets/logo.png", bytes(range(256)) * 8)  # a binary file
    repo.commit("init", "Initial commit", ALICE, "2020-06-01T10:00:00+00:00")

    repo.write("README.md", f"# Robust models\n\nDownload the weights:\n\n    {first}\n")
    repo.commit("leak", "Add download link for the weights", ALICE, "2020-07-20T09:30:00+00:00")
    repo.git("tag", "v1.0")

    repo.git("checkout", "-q", "-b", "feature/storage")
    repo.write("config/storage.env",
               f"STORAGE=DefaultEndpointsProtocol=https;AccountName=robustdata;"
               f"AccountKey={conn_key};EndpointSuffix=core.windows.net\n")
    repo.commit("conn", "Add storage config", CAROL, "2020-09-01T12:00:00+00:00")
    repo.git("mv", "config/storage.env", "config/prod.env")
    repo.commit("rename", "Rename config", CAROL, "2020-09-02T12:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge storage config", "feature/storage",
             author=BOB, date="2020-09-10T08:00:00+00:00")
    repo.commits["merge"] = repo.git("rev-parse", "HEAD")

    repo.write("README.md", f"# Robust models\n\nDownload the weights:\n\n    {second}\n")
    repo.commit("extend", "Extend the link's expiry", BOB, "2021-10-05T23:09:59+00:00")

    repo.write("README.md", "# Robust models\n\nAsk us for the weights.\n")
    (path / "config" / "prod.env").unlink()
    repo.commit("delete", "Remove secrets", BOB, "2023-06-24T00:00:00+00:00")

    # A commit made unreachable by a reset: only --all-objects finds it.
    dangling_key = new_key()
    repo.write("oops.env", f"AccountName=robustoops\nAccountKey={dangling_key}\n")
    repo.commit("dangling", "oops", CAROL, "2023-07-01T00:00:00+00:00")
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.git("reflog", "expire", "--expire=now", "--all")
    return Story(repo, first, second, conn_key, dangling_key)


def run(target: Path | str, **kw: object) -> ScanResult:
    return scan([str(target)], ScanOptions(jobs=1, now=NOW, **kw))  # type: ignore[arg-type]


def by_account(result: ScanResult, account: str) -> list[Finding]:
    return [f for f in result.findings if f.explanation.access.account == account]


def test_history_finds_both_versions_of_the_token_and_where_they_came_from(story: Story) -> None:
    result = run(story.repo.path)
    sas = sorted(by_account(result, "robustmodels"),
                 key=lambda f: f.explanation.access.validity.expiry)  # type: ignore[arg-type,return-value]
    assert len(sas) == 2
    first, second = sas
    assert first.explanation.access.validity.expiry == datetime(2021, 10, 6, tzinfo=UTC)
    assert second.explanation.access.validity.expiry == datetime(2051, 10, 6, tzinfo=UTC)
    assert second.severity.label == "critical"
    assert first.severity.label == "low"  # expired by now
    (loc1,) = first.locations
    assert loc1.path.endswith("README.md") and loc1.line == 5
    assert loc1.git is not None
    assert loc1.git.commit == story.repo.commits["leak"]
    assert (loc1.git.author, loc1.git.email) == ALICE
    assert loc1.git.date == "2020-07-20T09:30:00+00:00"
    assert loc1.git.message == "Add download link for the weights"
    assert loc1.git.removed_in == story.repo.commits["extend"]
    assert loc1.git.removed_from_head
    (loc2,) = second.locations
    assert loc2.git is not None
    assert loc2.git.commit == story.repo.commits["extend"]
    assert (loc2.git.author, loc2.git.email) == BOB
    assert loc2.git.removed_in == story.repo.commits["delete"]
    assert loc2.git.last_present == story.repo.commits["extend"]
    assert loc2.git.removed_from_head and not loc2.git.present_at_head


def test_renamed_and_deleted_connection_string_has_one_location_per_path(story: Story) -> None:
    result = run(story.repo.path)
    (conn,) = by_account(result, "robustdata")
    assert conn.explanation.access.kind == "account-key"
    paths = {(loc.path.rsplit("/", 2)[-2] + "/" + loc.path.rsplit("/", 1)[-1]): loc
             for loc in conn.locations}
    assert set(paths) == {"config/storage.env", "config/prod.env"}
    intro = paths["config/storage.env"].git
    assert intro is not None and intro.commit == story.repo.commits["conn"]
    assert (intro.author, intro.email) == CAROL
    renamed = paths["config/prod.env"].git
    assert renamed is not None and renamed.commit == story.repo.commits["rename"]
    assert renamed.removed_in == story.repo.commits["delete"]
    assert all(loc.git and loc.git.removed_from_head for loc in conn.locations)


def test_unreachable_commit_is_found_only_with_all_objects(story: Story) -> None:
    assert by_account(run(story.repo.path), "robustoops") == []
    result = run(story.repo.path, selection=Selection(all_objects=True))
    (oops,) = by_account(result, "robustoops")
    (loc,) = oops.locations
    assert loc.git is not None and loc.git.commit is None  # on no ref
    assert loc.line == 1  # the connection string starts at AccountName=


def test_each_blob_is_scanned_once(story: Story) -> None:
    result = run(story.repo.path)
    # every blob in the object database is read once, straight from the packs
    listing = subprocess.run(
        ["git", "-C", str(story.repo.path), "cat-file", "--batch-all-objects",
         "--batch-check=%(objecttype)"], capture_output=True, text=True, check=True).stdout
    assert result.stats.files == listing.split().count("blob")


def test_timeline_groups_the_story_in_commit_order(story: Story,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", "--format", "json",
                 str(story.repo.path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    timeline = {t["subject"]: t["events"] for t in doc["timeline"]}
    events = [(e["date"][:10], e["event"], e["author"], e["expiry"][:10])
              for e in timeline["storage account 'robustmodels'"]]
    assert events == [
        ("2020-07-20", "introduced", ALICE[0], "2021-10-06"),
        ("2021-10-05", "introduced", BOB[0], "2051-10-06"),
        ("2021-10-05", "removed", BOB[0], "2021-10-06"),
        ("2023-06-24", "removed", BOB[0], "2051-10-06"),
    ]
    assert main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", str(story.repo.path)]) == 1
    text = capsys.readouterr().out
    assert "Timeline (git history)" in text
    assert "gone from HEAD but still in history: deleting it did not revoke it" in text


def test_sarif_carries_provenance(story: Story, capsys: pytest.CaptureFixture[str]) -> None:
    main(["scan", "-j", "1", "--format", "sarif", str(story.repo.path)])
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    props = [r["properties"] for r in results]
    assert all({"commit", "author", "date", "removedFromHead"} <= p.keys() for p in props)
    assert {p["commit"] for p in props} >= {story.repo.commits["leak"],
                                            story.repo.commits["extend"]}


def test_range_since_and_branch(story: Story) -> None:
    c = story.repo.commits
    extend_only = run(story.repo.path, selection=Selection(
        revision_range=f"{c['merge']}..{c['extend']}"))
    assert [f.explanation.access.validity.expiry for f in extend_only.findings] == [
        datetime(2051, 10, 6, tzinfo=UTC)]
    since = run(story.repo.path, selection=Selection(since=c["extend"]))
    assert since.findings == []  # the deleting commit added no secret
    branch = run(story.repo.path, selection=Selection(branch="v1.0"))
    assert [f.explanation.access.account for f in branch.findings] == ["robustmodels"]


def test_worktree_changes_are_scanned_too(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    repo.git("init", "-q", "-b", "main")
    repo.write("a.txt", "nothing\n")
    repo.commit("one", "one", ALICE, "2024-01-01T00:00:00+00:00")
    url = sas_url("worktreeacct", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    repo.write("notes.md", f"link: {url}\n")  # untracked, not committed
    (f,) = run(tmp_path).findings
    (loc,) = f.locations
    assert loc.path.endswith("notes.md") and loc.git is None


def test_staged_scans_only_the_index(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    repo.git("init", "-q", "-b", "main")
    old = sas_url("committedacct", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    repo.write("old.md", f"{old}\n")
    repo.commit("one", "one", ALICE, "2024-01-01T00:00:00+00:00")
    new = sas_url("stagedacct", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    repo.write("new.md", f"{new}\n")
    repo.git("add", "new.md")
    repo.write("unstaged.md", f"{sas_url('unstagedacct', new_key(), NOW.replace(year=2030))}\n")
    result = run(tmp_path, selection=Selection(staged=True))
    assert [f.explanation.access.account for f in result.findings] == ["stagedacct"]


def test_baseline_and_inline_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = sas_url("baselineacct", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    (tmp_path / "a.md").write_text(f"{first}\n")
    baseline = tmp_path / "keyscope-baseline.json"
    assert main(["baseline", "create", str(baseline), "-j", "1", str(tmp_path)]) == 0
    doc = json.loads(baseline.read_text())
    assert [e["rule_id"] for e in doc["findings"]] == ["azure-storage-sas"]
    assert first.split("sig=")[1] not in baseline.read_text()
    # moving the accepted secret to another line and file keeps it accepted
    (tmp_path / "a.md").write_text(f"moved\n\n{first}\n")
    assert main(["scan", "-j", "1", "--baseline", str(baseline), str(tmp_path)]) == 0
    capsys.readouterr()
    second = sas_url("newacct", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    (tmp_path / "b.md").write_text(f"{second}\n")
    assert main(["scan", "-j", "1", "--baseline", str(baseline), "--format", "json",
                 str(tmp_path)]) == 1
    found = json.loads(capsys.readouterr().out)["findings"]
    assert [f["explanation"]["access"]["account"] for f in found] == ["newacct"]
    (tmp_path / "b.md").write_text(f"{second}  <!-- keyscope:ignore test fixture -->\n")
    assert main(["scan", "-j", "1", "--baseline", str(baseline), str(tmp_path)]) == 0


def test_pre_commit_hook_blocks_a_staged_secret(tmp_path: Path) -> None:
    """The hook runs through `pre-commit try-repo`, which installs keyscope from a copy
    of this repository into pre-commit's own environment."""
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is a test dependency (pip install -e '.[test]')"
    hook_repo = tmp_path / "hook"
    shutil.copytree(ROOT, hook_repo, ignore=shutil.ignore_patterns(
        ".venv", "benchmarks", ".git", "__pycache__", "*.egg-info", ".*_cache", "build"))
    h = Repo(hook_repo)
    h.git("init", "-q", "-b", "main")
    h.commit("hook", "hook", ALICE, "2024-01-01T00:00:00+00:00")
    work = Repo(tmp_path / "work")
    work.path.mkdir()
    work.git("init", "-q", "-b", "main")
    work.write("ok.txt", "fine\n")
    work.git("add", "ok.txt")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    clean = subprocess.run([pre_commit, "try-repo", str(hook_repo), "keyscope"],
                           cwd=work.path, env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    url = sas_url("hookacct", new_key(), datetime(2030, 1, 1, tzinfo=UTC))
    work.write("leak.md", f"{url}\n")
    work.git("add", "leak.md")
    leak = subprocess.run([pre_commit, "try-repo", str(hook_repo), "keyscope"],
                          cwd=work.path, env=env, capture_output=True, text=True)
    assert leak.returncode == 1, leak.stdout + leak.stderr
    assert "hookacct" in leak.stdout


def test_remote_repository_is_mirrored_then_fetched(story: Story, tmp_path: Path) -> None:
    url = f"file://{story.repo.path}"
    cache = tmp_path / "cache"
    first = scan([url], ScanOptions(jobs=1, now=NOW, cache_dir=cache))
    mirrors = list((cache / "repos").glob("*.git"))
    assert len(mirrors) == 1
    accounts = sorted({f.explanation.access.account or "" for f in first.findings})
    assert accounts == ["robustdata", "robustmodels"]
    # paths are shown under the remote's name, without scheme or credentials
    assert all(loc.path.startswith(f"{story.repo.path}/")
               for f in first.findings for loc in f.locations)
    # a new commit upstream is seen on the next run, from the same mirror
    clone = Repo(tmp_path / "upstream-clone")
    subprocess.run(["git", "clone", "-q", str(story.repo.path), str(clone.path)], check=True)
    clone.write("new.md", sas_url("robustlater", new_key(), datetime(2030, 1, 1, tzinfo=UTC)))
    clone.commit("later", "later", CAROL, "2024-01-01T00:00:00+00:00")
    clone.git("push", "-q", "origin", "HEAD:refs/heads/later")
    second = scan([url], ScanOptions(jobs=1, now=NOW, cache_dir=cache))
    assert list((cache / "repos").glob("*.git")) == mirrors
    assert "robustlater" in {f.explanation.access.account for f in second.findings}
    subprocess.run(["git", "-C", str(story.repo.path), "branch", "-q", "-D", "later"], check=True)


def test_remote_label_hides_credentials() -> None:
    from keyscope.sources.remote import remote_label

    assert remote_label("https://user:tok@host.example/o/r.git") == "host.example/o/r"
    assert remote_label("git@github.com:org/repo.git") == "github.com/org/repo"
    assert remote_label("http://u:p@127.0.0.1:9/x.git") == "127.0.0.1:9/x"
    assert remote_label("ssh://git@host.example:2222/o/r.git") == "host.example:2222/o/r"
    assert remote_label("https://host.example/o/r.git") == "host.example/o/r"


def test_not_a_repository_with_git_flag_is_an_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--git", str(tmp_path)]) == 2
    assert "not a git repository" in capsys.readouterr().err
