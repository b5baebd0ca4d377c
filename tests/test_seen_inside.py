"""A key inside a connection string that was read is not read again by the key rule
(``seen_inside`` in the rule file): the same findings, one parse fewer per string.
Keys are random 64-byte values, as the Azure SDK's are."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from keyscope import pipeline
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, new_key


def test_a_key_in_its_connection_string_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner, bare, odd = new_key(), new_key(), new_key()
    (tmp_path / "app.env").write_text(
        f"STORAGE=DefaultEndpointsProtocol=https;AccountName=contosodata;AccountKey={inner}\n"
        f"BACKUP_ACCOUNT_NAME=contosobackup\nBACKUP_ACCOUNT_KEY={bare}\n"
        # a connection string that is not read (no account name): its key is read alone
        f"OTHER=DefaultEndpointsProtocol=https;AccountKey={odd}\n"
        "OTHER_ACCOUNT_NAME=contosoother\n"
    )
    calls: Counter[str] = Counter()
    real = pipeline.parser

    def counting(name: str) -> Any:
        parse = real(name)

        def counted(site: Any) -> Any:
            calls[name] += 1
            return parse(site)

        return counted if parse else None

    def run() -> list[tuple[str, str, int]]:
        result = scan([tmp_path], ScanOptions(jobs=1, now=NOW, git=False))
        return [(f.rule_id, f.fingerprint, loc.column) for f in result.findings
                for loc in f.locations]  # fmt: skip

    monkeypatch.setattr(pipeline, "parser", counting)
    found = run()
    assert calls["azure-connection-string"] == 2
    assert calls["azure-account-key"] == 2  # the bare key and the unread string's key
    assert sorted(rule for rule, _, _ in found) == [
        "azure-storage-account-key", "azure-storage-account-key",
        "azure-storage-connection-string"]  # fmt: skip
    # without the rule's seen_inside, the inner key is read too and then dropped: the
    # same findings at the same places
    monkeypatch.setattr(pipeline, "_held", lambda match, holders: False)
    calls.clear()
    assert run() == found
    assert calls["azure-account-key"] == 3
