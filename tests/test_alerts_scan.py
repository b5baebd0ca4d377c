"""``keyscope scan --db`` sends the inventory's alerts to the ``[[notify]]``
destinations: a real git repository, a real webhook receiver on loopback, SQLite and a
real PostgreSQL server. A new secret alerts once, with its owners and never its bytes; a
rescan sends nothing; a receiver that answers 500 gets the alert on the next run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscope.cli import main
from tests.inventory_support import commit_all, leak, new_repo, rows
from tests.notify_receivers import HttpReceiver, http_receiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    yield from http_receiver()


def _scan(capsys: pytest.CaptureFixture[str], db_url: str, repo: Path, config: Path,
          now: str = "2026-12-07T12:00:00+00:00") -> None:
    capsys.readouterr()
    code = main(["scan", "-q", "-j", "1", "--fail-on", "never", "--format", "json", "--now", now,
                 f"--db={db_url}", "--config", str(config), "--allow-internal", str(repo)])
    assert code == 0
    capsys.readouterr()


def test_a_new_secret_alerts_its_owners_once_and_a_failed_delivery_is_retried(
    db_url: str, tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KS_TEST_HOOK_SECRET", "hook-key")
    repo = new_repo(tmp_path / "repo")
    (repo / ".github").mkdir()
    (repo / ".github" / "CODEOWNERS").write_text("/app/ @acme/storage-team\n")
    key = leak(repo / "app" / "settings.py", "acmeprod")
    commit_all(repo, "add settings")
    config = tmp_path / "keyscope.toml"
    config.write_text('[[notify]]\nkind = "webhook"\nname = "siem"\n'
                      f'url = "{receiver.base}/hook"\nsecret-env = "KS_TEST_HOOK_SECRET"\n')

    receiver.mode = "500"  # the receiver is failing: the alert waits in the outbox
    _scan(capsys, db_url, repo, config)
    assert len(receiver.requests) == 1
    [pending] = rows(db_url, "SELECT status, attempts FROM deliveries")
    assert (pending["status"], pending["attempts"]) == ("pending", 1)

    receiver.mode = "ok"  # the next run, once the backoff has passed, delivers it
    [later] = rows(db_url, "SELECT next_attempt_at FROM deliveries")
    _scan(capsys, db_url, repo, config, now=str(later["next_attempt_at"]))
    assert len(receiver.requests) == 2
    alert = json.loads(receiver.requests[-1].body)
    assert (alert["trigger"], alert["account"]) == ("new", "acmeprod")
    assert {o["name"] for o in alert["owners"]} >= {"@acme/storage-team", "Alice"}
    assert key.encode() not in receiver.requests[-1].body
    assert key[:20].encode() not in b"".join(r.body for r in receiver.requests)
    [done] = rows(db_url, "SELECT status FROM deliveries")
    assert done["status"] == "delivered"

    _scan(capsys, db_url, repo, config, now="2026-12-08T12:00:00+00:00")  # nothing new
    assert len(receiver.requests) == 2

    # the inventory keeps the owners: `inventory show` names them, the export holds them
    [row] = rows(db_url, "SELECT fingerprint, owners FROM credentials")
    assert {o["name"] for o in json.loads(row["owners"])} >= {"@acme/storage-team", "Alice"}
    capsys.readouterr()
    assert main(["inventory", "show", f"--db={db_url}", row["fingerprint"]]) == 0
    shown = capsys.readouterr().out
    assert "owners: " in shown and "@acme/storage-team" in shown
