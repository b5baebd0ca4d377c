"""Digests shaped like account keys never reach Python (issue 21).

Lockfiles hold hundreds of SHA-512 digests per version (``"integrity": "sha512-…"``,
NuGet's ``contentHash``), each 88 Base64 characters ending in ``==``: an account key's
shape. The key rule's anchor needs a key label, and its veto patterns set aside a
labelled value whose label is a digest's, in the engine. Keys, SAS tokens and digests are
real: minted by the Azure SDK with random keys, ``hashlib`` digests of real bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.detect.engine import make_engine
from keyscope.detect.rules import load_rule_file, load_rules
from keyscope.errors import ConfigError
from keyscope.pipeline import BlobScanner
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from tests.sdk import NOW, blob_url, new_key

ENGINES = ("re", "hyperscan")
KEY_RULE = "azure-storage-account-key"


def _key() -> str:
    while True:
        k = new_key()
        if not placeholder_secret(k):
            return k


def _digest(text: str) -> str:
    return base64.b64encode(hashlib.sha512(text.encode()).digest()).decode()


def _package_lock(names: list[str], extra: dict[str, object] | None = None) -> str:
    packages: dict[str, object] = {"": {"name": "app", "version": "1.0.0"}}
    for name in names:
        packages[f"node_modules/{name}"] = {
            "version": "1.0.0",
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",
            "integrity": f"sha512-{_digest(name)}",
        }
    packages.update(extra or {})
    return json.dumps({"name": "app", "lockfileVersion": 3, "packages": packages}, indent=2)


# package names that hold the key rule's label words: the digest is still no candidate
NAMES = ["keyv", "passport", "secret-handshake", "pwd-utils", "credential-helper", "lodash"]


@pytest.mark.parametrize("engine", ENGINES)
def test_lockfile_digests_give_the_key_rule_no_hit(engine: str) -> None:
    rules = load_rules()
    index = [r.id for r in rules].index(KEY_RULE)
    data = _package_lock(NAMES * 50).encode()
    yarn = "".join(
        f'{n}@^1.0.0:\n  version "1.0.0"\n  resolved "https://registry.yarnpkg.com/{n}.tgz"\n'
        f"  integrity sha512-{_digest(n)}\n\n"
        for n in NAMES
    ).encode()
    pnpm = "".join(
        f"  {n}@1.0.0:\n    resolution: {{integrity: sha512-{_digest(n)}}}\n" for n in NAMES
    ).encode()
    nuget = json.dumps(
        {"version": 1, "dependencies": {"net8.0": {
            n: {"type": "Direct", "resolved": "1.0.0", "contentHash": _digest(n)} for n in NAMES
        }}}, indent=2,
    ).encode()  # fmt: skip
    sri = f'<script src="/keyboard.js" integrity="sha512-{_digest("k")}"></script>'.encode()
    made = make_engine(engine, rules)
    for text in (data, yarn, pnpm, nuget):
        assert [h for h in made.hits(text) if h.rule == index] == []
    # "key" in keyboard.js is a label in reach: the hit is vetoed (the integrity word)
    assert [h.vetoed for h in made.hits(sri) if h.rule == index] == [True]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_digest_labelled_like_a_key_is_vetoed_in_the_engine(engine: str) -> None:
    rules = load_rules()
    rule = next(r for r in rules if r.id == KEY_RULE)
    text = (
        'storage_account_name = "contosotfstate"\n'
        f'integrity_key_sha512 = "{_digest("a")}"\n'
        f'password_hash = "{_digest("b")}"\n'
    )
    made = make_engine(engine, rules)
    hits = [h for h in made.hits(text.encode()) if made.rules[h.rule].id == KEY_RULE]
    assert len(hits) == 2 and all(h.vetoed for h in hits)
    result = BlobScanner(made, NOW).scan(Blob(path="main.tf", data=text.encode()))
    assert result.findings == []
    # counted under the rule's reason; the parser never ran (its reason is absent)
    assert result.rejected == {rule.veto_reason: 2}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_key_beside_a_digest_is_still_found(engine: str) -> None:
    key = _key()
    text = (
        f'sha512 = "{_digest("x")}"\n'
        "AZURE_STORAGE_ACCOUNT=contosokeys\n"
        f"AZURE_STORAGE_KEY={key}\n"
    )
    result = BlobScanner(make_engine(engine, load_rules()), NOW).scan(
        Blob(path=".env", data=text.encode())
    )
    assert [(f.rule_id, f.explanation.access.account) for f in result.findings] == [
        (KEY_RULE, "contosokeys")
    ]


def test_a_sas_in_a_lockfile_is_found(tmp_path: Path) -> None:
    """Lockfiles are scanned like any file (no path is ruled out): a private package
    fetched from a SAS URL is recorded in ``resolved``, a real leak."""
    query = generate_blob_sas(
        "contosonpmfeed", "npm", "lib-1.2.3.tgz", account_key=_key(),
        permission=BlobSasPermissions(read=True), expiry=NOW + timedelta(days=90),
    )  # fmt: skip
    url = blob_url("contosonpmfeed", "npm", "lib-1.2.3.tgz", query)
    extra = {"node_modules/lib": {"version": "1.2.3", "resolved": url,
                                  "integrity": f"sha512-{_digest('lib')}"}}  # fmt: skip
    path = tmp_path / "package-lock.json"
    path.write_text(_package_lock(NAMES * 20, extra))
    options = ScanOptions(jobs=1, now=NOW, engine="hyperscan", cache_dir=tmp_path / "c", git=False)
    result = scan([path], options)
    assert [(f.rule_id, f.explanation.access.account) for f in result.findings] == [
        ("azure-storage-sas", "contosonpmfeed")
    ]
    assert result.stats.rejected == {}  # 121 digests, none set aside: none was a candidate


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unlabelled_repeat_of_a_found_key_is_another_location(engine: str) -> None:
    key = _key()
    text = "\n".join([
        "STORAGE = {",
        '    "account_name": "contosorepeat",',
        f'    "account_key": "{key}",',
        "}",
        "",
        f'FALLBACK = ["{key}"]',
    ])
    result = BlobScanner(make_engine(engine, load_rules()), NOW).scan(
        Blob(path="settings.py", data=text.encode())
    )
    assert sorted(f.location.line for f in result.findings) == [3, 6]
    assert {f.explanation.access.account for f in result.findings} == {"contosorepeat"}


def test_a_veto_needs_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[[rules]]\nid = "my-key"\nname = "n"\ndescription = "d"\nparser = "azure-account-key"\n'
        "pattern = 'mykey'\ncapture = '(?P<value>mykey)'\nexamples = [\"mykey\"]\n"
        "veto = ['sha512-mykey']\n"
    )
    with pytest.raises(ConfigError, match="veto_reason"):
        load_rule_file(path)
