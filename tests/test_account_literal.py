"""Account names come only from literal text, never from identifiers (issue 21).

SDK-style code names the account through a variable (``self.account_name``,
``this.accountName``, ``var.storage_account``, ``${…}``, ``{{ … }}``, ``%s``, ``$VAR``); the
credential beside it is still reported, for an unknown account, or for the literal name a
line further away. Tokens and keys are minted by the Azure SDK with fresh random keys.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from keyscope.analyze.azure.candidates import account_near, literal_name
from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.model import Finding
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, new_key


def _key() -> str:
    while True:
        k = new_key()
        if not placeholder_secret(k):
            return k


def _query(account: str = "contosoreal") -> str:
    """An SDK-signed service SAS query (the account only enters the signature)."""
    while True:
        query = generate_blob_sas(
            account, "data", "x.csv", account_key=_key(),
            permission=BlobSasPermissions(read=True), expiry=NOW + timedelta(days=30),
        )  # fmt: skip
        if not placeholder_secret(query):
            return query


def _scan(tmp_path: Path, name: str, text: str) -> list[Finding]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    options = ScanOptions(jobs=1, now=NOW, engine="re", cache_dir=tmp_path / "c", git=False)
    return scan([path], options).findings


def _accounts(findings: list[Finding]) -> list[str | None]:
    return [f.explanation.access.account for f in findings]


# Each line builds the URL from an identifier; the SAS itself is a literal.
IDENTIFIER_URLS = {
    "python_self.py": 'class Store:\n    def url(self):\n        account_name=self.account_name\n'
    '        return "https://" + self.account_name + ".blob.core.windows.net/data/x.csv?{q}"\n',
    "python_fstring.py": 'def url(self):\n    return f"https://{{self.account_name}}'
    '.blob.core.windows.net/data/x.csv?{q}"\n',
    "python_attr.py": "def __init__(self, account_name):\n    self.account_name = account_name\n"
    '    self.sas = "{q}"\n',
    "client.ts": "const accountName = this.accountName;\n"
    "const url = `https://${{this.accountName}}.blob.core.windows.net/data/x.csv?{q}`;\n",
    "main.tf": 'locals {{\n  storage_account_name = var.storage_account_name\n'
    '  url = "https://${{var.storage_account_name}}.blob.core.windows.net/data/x.csv?{q}"\n}}\n',
    "deploy.yml": 'account_name: "{{{{ storage_account }}}}"\n'
    'url: "https://{{{{ storage_account }}}}.blob.core.windows.net/data/x.csv?{q}"\n',
    "format.py": 'URL = "https://%s.blob.core.windows.net/data/x.csv?{q}" % account_name\n',
    "upload.sh": 'ACCOUNT_NAME=$STORAGE_ACCOUNT\nURL="https://$ACCOUNT_NAME.blob.core.windows.net/'
    'data/x.csv?{q}"\n',
    "Program.cs": 'var accountName = options.AccountName;\nvar sas = "{q}";\n',
}


@pytest.mark.parametrize("name", sorted(IDENTIFIER_URLS))
def test_an_identifier_names_no_account(tmp_path: Path, name: str) -> None:
    text = IDENTIFIER_URLS[name].format(q=_query())
    found = _scan(tmp_path, name, text)
    # still reported (a SAS needs no account to be a credential), for an unknown account
    assert [f.rule_id for f in found] == ["azure-storage-sas"]
    assert _accounts(found) == [None]


def test_the_literal_name_further_away_wins_over_an_identifier(tmp_path: Path) -> None:
    key = _key()
    text = "\n".join([
        "from azure.storage.blob import BlobServiceClient",
        "",
        'ACCOUNT = "contosolegacy"',
        "",
        "class Uploader:",
        "    def __init__(self):",
        "        self.client = BlobServiceClient(",
        '            "https://contosolegacy.blob.core.windows.net",',
        "            credential={",
        '                "account_name": self.account_name,',
        f'                "account_key": "{key}",',
        "            },",
        "        )",
    ])
    found = _scan(tmp_path, "upload.py", text)
    assert [(f.rule_id, f.explanation.access.account) for f in found] == [
        ("azure-storage-account-key", "contosolegacy")
    ]


def test_a_key_beside_an_identifier_only_is_not_reported_for_self(tmp_path: Path) -> None:
    text = (
        "def creds(self):\n"
        f'    return {{"account_name": self.account_name, "account_key": "{_key()}"}}\n'
    )
    # no literal account name anywhere: the key is set aside, not reported for 'self'
    assert _scan(tmp_path, "creds.py", text) == []


def test_literal_names_are_still_read() -> None:
    assert account_near("storage_account_name = contosoai\n") == "contosoai"
    assert account_near('account_name="self"') == "self"  # quoted: a literal, however odd
    assert account_near("AZURE_STORAGE_ACCOUNT=contosoai") == "contosoai"
    assert account_near("AccountName=contosoai;AccountKey=…") == "contosoai"
    assert account_near("--account-name contosoai --account-key …") == "contosoai"
    assert account_near("https://contosoai.blob.core.windows.net/c") == "contosoai"


@pytest.mark.parametrize(
    "text",
    [
        "account_name=self.account_name",
        "self.account_name = account_name",
        "accountName: this.accountName,",
        "storage_account = var.name",
        "storage_account_name = local.name",
        "account_name = name",
        "account_name = get_name()",
        "account_name = names[0]",
        "--account-name $ACCOUNT",
        "https://$ACCOUNT.blob.core.windows.net/c",
        "https://%ACCOUNT%.blob.core.windows.net/c",
        "https://{account}.blob.core.windows.net/c",
        "https://my_account.blob.core.windows.net/c",
    ],
)
def test_identifiers_and_templates_name_no_account(text: str) -> None:
    assert account_near(text) is None


def test_literal_name_checks_both_sides() -> None:
    text = "x = self.account_name"
    at = text.index("self")
    assert not literal_name(text, at, at + 4)
    text = 'x = "contosoai"'
    at = text.index("contosoai")
    assert literal_name(text, at, at + 9)
