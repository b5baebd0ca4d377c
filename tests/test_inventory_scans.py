"""``keyscope scan --db``: real scans of a changing git repository recorded in
SQLite and in PostgreSQL. A new secret alerts once, an unchanged rescan adds only a
scan row, a secret gone from the source is marked not present, and the database
never holds a secret."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.inventory_support import (
    assert_no_secret,
    commit_all,
    counts,
    git,
    keyscope,
    leak,
    new_repo,
    rows,
    scan,
)
from tests.sdk import NOW, account_sas, new_key


def _alerts(url: str) -> list[tuple[str, str]]:
    return [(r["trigger"], r["fingerprint"])
            for r in rows(url, 'SELECT "trigger" AS trigger, fingerprint FROM alerts ORDER BY id')]


def test_history_scans_alert_once_and_follow_presence(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = new_repo(tmp_path / "repo")
    (repo / "README.md").write_text("hello\n")
    commit_all(repo, "start")
    first = leak(repo / "app" / "settings.py", "acmeprod")
    introduced = commit_all(repo, "add settings")

    doc = json.loads(scan(capsys, db_url, str(repo)))
    [finding] = doc["findings"]
    fp1 = finding["fingerprint"]
    assert counts(db_url) == {"scans": 1, "credentials": 1, "occurrences": 1,
                              "verifications": 0, "triage_events": 0, "alerts": 1,
                              "deliveries": 0}
    [occ] = rows(db_url, "SELECT * FROM occurrences")
    assert (occ["source"], occ["place"], occ["line"]) == (str(repo), "app/settings.py", 1)
    assert (occ["commit_id"], occ["author"], occ["author_email"], occ["present"]) == (
        introduced, "Alice", "alice@example.org", 1)
    [cred] = rows(db_url, "SELECT * FROM credentials")
    assert (cred["fingerprint"], cred["provider"], cred["kind"], cred["account"],
            cred["status"]) == (fp1, "azure-storage", "account-key", "acmeprod", "open")
    [s] = rows(db_url, "SELECT * FROM scans")
    assert s["finished_at"] and s["complete"] == 1 and json.loads(s["sources"]) == [str(repo)]
    assert _alerts(db_url) == [("new", fp1)]

    # unchanged: a scan row and nothing else, no alert
    before = counts(db_url)
    scan(capsys, db_url, str(repo))
    assert counts(db_url) == {**before, "scans": 2}
    assert _alerts(db_url) == [("new", fp1)]

    # a second secret, committed by someone else on a branch: one new alert, for it only
    git(repo, "checkout", "-q", "-b", "feature")
    second = leak(repo / "deploy" / "env.py", "acmestaging")
    commit_all(repo, "deploy env", who="Bob")
    doc = json.loads(scan(capsys, db_url, str(repo)))
    fp2 = next(f["fingerprint"] for f in doc["findings"] if f["fingerprint"] != fp1)
    assert _alerts(db_url) == [("new", fp1), ("new", fp2)]
    [bob] = rows(db_url, "SELECT o.* FROM occurrences o JOIN credentials c ON "
                         "c.id = o.credential_id WHERE c.fingerprint = ?", (fp2,))
    assert (bob["author"], bob["place"], bob["present"]) == ("Bob", "deploy/env.py", 1)

    # the branch deleted: its blob is unreachable, so the second secret is gone
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "feature")
    scan(capsys, db_url, str(repo))
    present = {r["fingerprint"]: r["present"] for r in rows(
        db_url, "SELECT c.fingerprint, o.present FROM occurrences o JOIN credentials c "
                "ON c.id = o.credential_id")}
    assert present == {fp1: 1, fp2: 0}
    assert _alerts(db_url) == [("new", fp1), ("new", fp2)]
    assert_no_secret(db_url, first, second)


def test_files_scans_mark_a_deleted_file_not_present_and_partial_scans_do_not(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    leak(tree / "a.env", "acmea")
    gone = leak(tree / "sub" / "b.env", "acmeb")
    scan(capsys, db_url, "--no-git", str(tree))
    (tree / "sub" / "b.env").unlink()
    scan(capsys, db_url, "--no-git", str(tree))
    got = {r["place"]: r["present"] for r in rows(db_url, "SELECT * FROM occurrences")}
    assert got == {"a.env": 1, "sub/b.env": 0}

    # a scan of another source leaves this one's occurrences alone
    other = tmp_path / "other"
    leak(other / "c.env", "acmec")
    scan(capsys, db_url, "--no-git", str(other))
    got = {r["place"]: r["present"] for r in rows(db_url, "SELECT * FROM occurrences")}
    assert got == {"a.env": 1, "sub/b.env": 0, "c.env": 1}

    # the same tree given relatively from elsewhere is the same source
    leak(tree / "sub" / "b.env", "acmeb", key=gone)
    monkey = pytest.MonkeyPatch()
    monkey.chdir(tmp_path)
    try:
        scan(capsys, db_url, "--no-git", "tree")
    finally:
        monkey.undo()
    got = {r["place"]: r["present"] for r in rows(db_url, "SELECT * FROM occurrences")}
    assert got == {"a.env": 1, "sub/b.env": 1, "c.env": 1}

    # a partial selection of history (--since) does not mark anything gone
    repo = new_repo(tmp_path / "repo")
    leak(repo / "x.env", "acmex")
    base = commit_all(repo, "x")
    scan(capsys, db_url, str(repo))
    scan(capsys, db_url, "--since", base, str(repo))
    [x] = rows(db_url, "SELECT * FROM occurrences WHERE place = 'x.env'")
    assert x["present"] == 1
    [partial] = rows(db_url, "SELECT * FROM scans ORDER BY id DESC LIMIT 1")
    assert partial["complete"] == 0 and partial["finished_at"]


def test_severity_raised_alerts_once(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    leak(tree / "a.env", "acmea")
    lenient = tmp_path / "keyscope.toml"
    lenient.write_text('[policy.severity]\naccount-key = "medium"\nwide-read = "medium"\n')
    scan(capsys, db_url, "--no-git", "--config", str(lenient), str(tree))
    [cred] = rows(db_url, "SELECT * FROM credentials")
    assert cred["severity"] == 2
    scan(capsys, db_url, "--no-git", str(tree))  # the default policy: critical
    scan(capsys, db_url, "--no-git", str(tree))
    triggers = [t for t, _ in _alerts(db_url)]
    assert triggers == ["new", "severity-raised"]
    [raised] = rows(db_url, "SELECT payload FROM alerts WHERE \"trigger\" = 'severity-raised'")
    assert json.loads(raised["payload"])["severity"] == "critical"


def test_expiring_and_revoked_still_present_alert_once_each(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    key = new_key()
    sas = account_sas("acmesas", key, services="b", permission="rl",
                      expiry=NOW + timedelta(days=10), start=NOW - timedelta(days=1))
    url = f"https://acmesas.blob.core.windows.net/models/w.bin?{sas}"
    (tree / "notebook.py").write_text(f"WEIGHTS = '{url}'\n")

    def at(days: float) -> str:
        return (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    scan(capsys, db_url, "--no-git", "--now", at(0), str(tree))
    scan(capsys, db_url, "--no-git", "--now", at(1), str(tree))
    triggers = [t for t, _ in _alerts(db_url)]
    assert triggers == ["new", "expiring"]
    [expiring] = rows(db_url, "SELECT payload FROM alerts WHERE \"trigger\" = 'expiring'")
    body = json.loads(expiring["payload"])
    assert body["expires"] == at(10) and body["locations"][0]["location"] == "notebook.py:1"

    [cred] = rows(db_url, "SELECT fingerprint FROM credentials")
    code, _ = keyscope(capsys, "inventory", "triage", cred["fingerprint"], "--db", db_url,
                       "--status", "revoked", "--note", "rotated the key", "--by", "sec",
                       "--now", at(1))
    assert code == 0
    scan(capsys, db_url, "--no-git", "--now", at(3), str(tree))  # within the grace period
    assert [t for t, _ in _alerts(db_url)] == ["new", "expiring"]
    scan(capsys, db_url, "--no-git", "--now", at(9), str(tree))
    scan(capsys, db_url, "--no-git", "--now", at(9.5), str(tree))
    assert [t for t, _ in _alerts(db_url)] == ["new", "expiring", "revoked-still-present"]
    assert_no_secret(db_url, sas.rsplit("sig=", 1)[1], key)
