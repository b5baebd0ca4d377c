"""Detection details: UTF-16 strings in binaries, keys that happen to contain a
placeholder word, digests that look like keys."""

from __future__ import annotations

import base64
import tracemalloc
from datetime import UTC, datetime

import pytest

from keyscope.analyze.azure.filters import _PLACEHOLDER_WORDS, placeholder_secret
from keyscope.detect.engine import make_engine
from keyscope.detect.rules import load_rules
from keyscope.pipeline import BlobScanner
from keyscope.sources.interface import Blob
from tests.sdk import NOW, account_sas, new_key


@pytest.fixture(scope="module")
def scanner() -> BlobScanner:
    return BlobScanner(make_engine("hyperscan", load_rules()), NOW)


@pytest.mark.parametrize("pad", [b"", b"\x07"])
def test_utf16_string_in_a_binary_without_bom(scanner: BlobScanner, pad: bytes) -> None:
    url = "https://contosodll.blob.core.windows.net/c?" + account_sas(
        "contosodll", new_key(), expiry=datetime(2030, 1, 1, tzinfo=UTC))
    data = b"MZ\x90\x00\x03" + pad + ("x=" + url).encode("utf-16-le") + b"\x00\x00\xff\xfe"
    (found,) = scanner.scan(Blob(path="App.dll", data=data)).findings
    assert found.location.origin == ("utf-16",)
    assert found.explanation.access.account == "contosodll"


def test_utf16_halves_of_a_large_binary_are_held_one_at_a_time(scanner: BlobScanner) -> None:
    """A 16 MiB binary with a UTF-16 marker: its two halves (8 MiB each) are scanned
    in turn (one half and the scan of it: 16 MiB at most; both halves held: 24)."""
    url = "https://contosobig.blob.core.windows.net/c?" + account_sas(
        "contosobig", new_key(), expiry=datetime(2030, 1, 1, tzinfo=UTC))
    data = b"\x00\x01" * (8 << 20) + ("x=" + url).encode("utf-16-le")
    tracemalloc.start()
    try:
        found = scanner.scan(Blob(path="Big.dll", data=data)).findings
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [f.location.origin for f in found] == [("utf-16",)]
    assert peak < 20 << 20, f"peak {peak >> 20} MiB"  # both halves at once: 24 MiB


def test_a_real_key_containing_a_placeholder_word_is_kept() -> None:
    key = new_key()
    while _PLACEHOLDER_WORDS.search(key):
        key = new_key()  # a random key may hold such a word by chance (rarely)
    key = key[:20] + "your" + key[24:]  # still 64 random-looking bytes
    assert placeholder_secret(key) is None
    assert placeholder_secret("fake" + key[4:]) == "placeholder secret"
    assert placeholder_secret("EXAMPLE" + "x" * 30 + "example==") == "placeholder secret"


def test_digest_next_to_a_storage_url_is_not_a_key(scanner: BlobScanner) -> None:
    digest = base64.b64encode(bytes(range(64))[::-1]).decode()
    row = f"| w.bin | https://contosoai.blob.core.windows.net/models/w.bin | {digest} |"
    result = scanner.scan(Blob(path="MODEL_CARD.md", data=row.encode()))
    assert result.findings == []
    labelled = f"AccountName=contosoai\naccess_key = {new_key()}\n"
    assert len(scanner.scan(Blob(path="x.tf", data=labelled.encode())).findings) == 1


def test_bare_sas_takes_its_endpoint_from_a_nearby_line() -> None:
    """.env files keep the container URL and its SAS apart. The bare query gets the
    URL from the line above (so explain names the container and --verify can probe
    it), marked as a guess; a nearby URL with a SAS of its own is not borrowed."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from keyscope.verify import Target, plan

    scanner = BlobScanner(make_engine("hyperscan", load_rules()), NOW, keep_credentials=True)
    sas = generate_container_sas(
        "contosoenv", "models", new_key(), permission=ContainerSasPermissions(read=True),
        expiry=datetime(2030, 1, 1, tzinfo=UTC),
    )
    env = f"AZURE_CONTAINER_URL=https://contosoenv.blob.core.windows.net/models\nAZURE_SAS={sas}\n"
    (found,) = scanner.scan(Blob(path=".env", data=env.encode())).findings
    e = found.explanation
    assert (e.access.account, e.access.scope.level, e.access.scope.container) == (
        "contosoenv", "container", "models")
    assert any("taken from a nearby line" in n for n in e.notes)
    assert not e.redacted.startswith("https://")  # the token never had that URL
    requests = plan(Target(found.credential, e.access.account, e.fingerprint))  # type: ignore[arg-type]
    assert not isinstance(requests, str)
    assert requests[0].shown_url.startswith(
        "https://contosoenv.blob.core.windows.net/models?restype=account&comp=properties&")

    other = "https://contosoenv.blob.core.windows.net/other?" + account_sas(
        "contosoenv", new_key(), expiry=datetime(2030, 1, 1, tzinfo=UTC))
    env = f"BACKUP_URL={other}\nAZURE_SAS={sas}\n"
    found_all = scanner.scan(Blob(path=".env", data=env.encode())).findings
    bare = next(f for f in found_all if f.location.line == 2)
    assert bare.explanation.access.account == "contosoenv"
    assert bare.explanation.access.scope.container is None  # no path borrowed
