"""The target log of ``--cluster --db`` scans (``fleet/resume.py``) on a real SQLite
inventory: finished targets per run key, kept without credentials, forgotten when the
run ends; the run key ignores order and repeats but not the settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from keyscope.fleet.resume import TargetLog, run_key, shown_target
from keyscope.inventory.record import Recording
from keyscope.inventory.store import open_store

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "zzzzzz"


def test_a_target_url_is_kept_without_its_credentials() -> None:
    shown = shown_target(f"https://bot:{TOKEN}@git.example/acme/app.git")
    assert shown == "https://git.example/acme/app.git"
    assert TOKEN not in run_key([f"https://bot:{TOKEN}@git.example/acme/app.git"], {})


def test_the_run_key_is_the_target_set_and_the_settings() -> None:
    assert run_key(["b", "a", "a"], {"git": None}) == run_key(["a", "b"], {"git": None})
    assert run_key(["a", "b"], {"git": None}) != run_key(["a", "b"], {"git": False})
    assert run_key(["a", "b"], {}) != run_key(["a"], {})


def test_finished_targets_are_kept_per_run_and_forgotten_at_its_end(tmp_path: Path) -> None:
    url = str(tmp_path / "inventory.sqlite3")
    with open_store(url) as store:
        recording = Recording.start(store, ["x"], {}, NOW)
        log = TargetLog(store, run_key(["a", "b", "c"], {}), recording.scan_id)
        other = TargetLog(store, run_key(["a"], {}), recording.scan_id)
        log.done("a", NOW, failed=None, size=10, findings=1)
        log.done(f"https://u:{TOKEN}@h.example/r.git", NOW, failed=None, size=5, findings=0)
        log.done("c", NOW, failed="could not be scanned: gone", size=0, findings=0)
        other.done("a", NOW, failed=None, size=10, findings=1)
        log.done("a", NOW, failed=None, size=10, findings=1)  # again: one row
        assert log.finished() == {"a": recording.scan_id,
                                  "https://h.example/r.git": recording.scan_id}  # fmt: skip
        rows = store.rows("SELECT * FROM scan_targets")
        assert not any(TOKEN in str(r) for r in rows)
        log.forget()
        assert log.finished() == {}
        assert other.finished() == {"a": recording.scan_id}
