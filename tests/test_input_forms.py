"""Every input form ``keyscope.explain`` must accept, with tokens signed by the real Azure SDKs.

Each accepted form asserts the decoded kind, account, service/scope and permissions, and, where a
key is given, that the signature check proves the token was signed with it: the strongest evidence
that nothing was mangled while unescaping. Look-alikes and malformed tokens must raise precise
errors.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import random
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import TableSasPermissions, generate_table_sas
from azure.storage.blob import (
    AccountSasPermissions,
    BlobSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    Services,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.filedatalake import (
    DirectorySasPermissions,
    FileSystemSasPermissions,
    generate_directory_sas,
    generate_file_system_sas,
)
from azure.storage.fileshare import (
    FileSasPermissions,
    ShareSasPermissions,
    generate_file_sas,
    generate_share_sas,
)
from azure.storage.queue import QueueSasPermissions, generate_queue_sas

import keyscope
from keyscope import Explanation, NotStorageCredential, ParseError, Severity

# --- fixtures of the whole module: one random account key, fixed clock -------------------------

KEY = base64.b64encode(os.urandom(64)).decode("ascii")
OTHER_KEY = base64.b64encode(os.urandom(64)).decode("ascii")
ACCOUNT = "keyscopetest01"
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START = datetime(2025, 1, 1, tzinfo=UTC)
EXPIRY = START + timedelta(days=7)
NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
ALL_FOUR = ("blob", "file", "queue", "table")


def account_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_account_sas(
        account,
        key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, list=True),
        expiry=EXPIRY,
        start=START,
        services=Services(blob=True, queue=True, fileshare=True),
    )


def account_sas_all_services(account: str = ACCOUNT, key: str = KEY) -> str:
    """ss=bfqt: the blob SDK's Services has no table flag; the string form is accepted."""
    return generate_account_sas(
        account,
        key,
        resource_types="sco",
        permission="rl",
        expiry=EXPIRY,
        start=START,
        services="bfqt",
    )


def blob_sas(account: str = ACCOUNT, key: str = KEY, container: str = "c", blob: str = "a/b.txt"):
    return generate_blob_sas(
        account,
        container,
        blob,
        account_key=key,
        permission=BlobSasPermissions(read=True, write=True),
        expiry=EXPIRY,
        start=START,
    )


def container_sas(account: str = ACCOUNT, key: str = KEY, container: str = "c") -> str:
    return generate_container_sas(
        account,
        container,
        key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=EXPIRY,
        start=START,
    )


def file_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_file_sas(
        account,
        "share1",
        ["dir1", "f.txt"],
        key,
        permission=FileSasPermissions(read=True, create=True),
        expiry=EXPIRY,
        start=START,
    )


def share_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_share_sas(
        account,
        "share1",
        key,
        permission=ShareSasPermissions(read=True, list=True),
        expiry=EXPIRY,
        start=START,
    )


def queue_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_queue_sas(
        account,
        "jobs",
        key,
        permission=QueueSasPermissions(read=True, process=True),
        expiry=EXPIRY,
        start=START,
    )


def table_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_table_sas(
        AzureNamedKeyCredential(account, key),
        "Orders",
        permission=TableSasPermissions(read=True, add=True),
        expiry=EXPIRY,
        start=START,
    )


def filesystem_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_file_system_sas(
        account,
        "fs1",
        key,
        permission=FileSystemSasPermissions(read=True, list=True),
        expiry=EXPIRY,
        start=START,
    )


def directory_sas(account: str = ACCOUNT, key: str = KEY) -> str:
    return generate_directory_sas(
        account,
        "fs1",
        "d1/d2",
        key,
        permission=DirectorySasPermissions(read=True, list=True),
        expiry=EXPIRY,
        start=START,
    )


def one(text: str, **kwargs: object) -> Explanation:
    """Explain ``text`` and insist it holds exactly one credential."""
    result = keyscope.explain(text, NOW, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, list)
    assert len(result) == 1, [e.access.kind for e in result]
    assert isinstance(result[0], Explanation)
    return result[0]


def assert_signed(e: Explanation) -> None:
    assert e.signature.status == "signed-with-key", e.signature.detail


def assert_account_sas(e: Explanation, account: str | None = ACCOUNT) -> None:
    """The decoded fields of :func:`account_sas`."""
    a = e.access
    assert a.kind == "account-sas"
    assert a.account == account
    assert a.services == ("blob", "file", "queue")
    assert a.scope.level == "account"
    assert a.details["resource_types"] == ["service", "container", "object"]
    assert a.permissions == "rwl"
    assert {c.letter for c in a.capabilities} == {"r", "w", "l"}
    assert a.validity.start == START
    assert a.validity.expiry == EXPIRY


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(base64.b64decode(key)).hexdigest().upper()


# --- full SAS URLs on every service host ------------------------------------------------------


def test_blob_url_service_sas() -> None:
    url = f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{blob_sas()}"
    e = one(url, keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == ACCOUNT
    assert a.account_note is None
    assert a.services == ("blob",)
    assert a.scope.level == "blob"
    assert a.scope.container == "c"
    assert a.scope.path == "a/b.txt"
    assert a.permissions == "rw"
    assert a.cloud is not None and "public" in a.cloud.lower()
    assert a.emulator is False
    assert_signed(e)


def test_blob_url_signature_rejects_other_key() -> None:
    """The signature check is not a rubber stamp: another key is reported as such."""
    url = f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{blob_sas()}"
    e = one(url, keys=(OTHER_KEY,))
    assert e.signature.status == "not-signed-with-key"
    e = one(url, keys=(OTHER_KEY, KEY))
    assert_signed(e)


def test_blob_url_container_sas() -> None:
    url = f"https://{ACCOUNT}.blob.core.windows.net/c?restype=container&comp=list&{container_sas()}"
    e = one(url, keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == ACCOUNT
    assert a.services == ("blob",)
    assert a.scope.level == "container"
    assert a.scope.container == "c"
    assert a.permissions == "rl"
    assert_signed(e)


def test_blob_url_account_sas() -> None:
    e = one(f"https://{ACCOUNT}.blob.core.windows.net/?{account_sas()}", keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_account_sas_all_four_services() -> None:
    e = one(f"https://{ACCOUNT}.table.core.windows.net/?{account_sas_all_services()}", keys=(KEY,))
    assert e.access.kind == "account-sas"
    assert e.access.services == ALL_FOUR
    assert e.access.permissions == "rl"
    assert_signed(e)


def test_dfs_url_filesystem_sas() -> None:
    e = one(f"https://{ACCOUNT}.dfs.core.windows.net/fs1?{filesystem_sas()}", keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == ACCOUNT
    assert a.services == ("dfs",)
    assert a.scope.level == "container"
    assert a.scope.container == "fs1"
    assert a.permissions == "rl"
    assert any("blob endpoint" in n for n in e.notes)
    assert_signed(e)


def test_dfs_url_directory_sas() -> None:
    e = one(f"https://{ACCOUNT}.dfs.core.windows.net/fs1/d1/d2?{directory_sas()}", keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.services == ("dfs",)
    assert a.scope.level == "directory"
    assert a.scope.container == "fs1"
    assert a.scope.path == "d1/d2"
    assert a.scope.directory_depth == 2
    assert a.permissions == "rl"
    assert_signed(e)


def test_file_url_file_sas() -> None:
    e = one(f"https://{ACCOUNT}.file.core.windows.net/share1/dir1/f.txt?{file_sas()}", keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == ACCOUNT
    assert a.services == ("file",)
    assert a.scope.level == "file"
    assert a.scope.container == "share1"
    assert a.scope.path == "dir1/f.txt"
    assert a.permissions == "rc"
    assert_signed(e)


def test_file_url_share_sas() -> None:
    e = one(f"https://{ACCOUNT}.file.core.windows.net/share1?{share_sas()}", keys=(KEY,))
    a = e.access
    assert a.services == ("file",)
    assert a.scope.level == "share"
    assert a.scope.container == "share1"
    assert a.permissions == "rl"
    assert_signed(e)


def test_queue_url_service_sas() -> None:
    e = one(f"https://{ACCOUNT}.queue.core.windows.net/jobs/messages?{queue_sas()}", keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == ACCOUNT
    assert a.services == ("queue",)
    assert a.scope.level == "queue"
    assert a.scope.container == "jobs"
    assert a.permissions == "rp"
    # In a queue SAS, p is "process" (dequeue), not a POSIX permission.
    assert [c.name for c in a.capabilities] == ["read", "process"]
    assert_signed(e)


def test_table_url_service_sas() -> None:
    url = f"https://{ACCOUNT}.table.core.windows.net/Orders(PartitionKey='p',RowKey='r')?"
    e = one(url + table_sas(), keys=(KEY,))
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == ACCOUNT
    assert a.services == ("table",)
    assert a.scope.level == "table"
    assert a.scope.container == "Orders"
    assert a.permissions == "ra"
    assert_signed(e)


@pytest.mark.parametrize(
    ("service", "path", "token", "level"),
    [
        ("blob", "c/a/b.txt", blob_sas, "blob"),
        ("queue", "jobs", queue_sas, "queue"),
        ("table", "Orders", table_sas, "table"),
        ("file", "share1/dir1/f.txt", file_sas, "file"),
    ],
)
def test_secondary_host(service: str, path: str, token, level: str) -> None:
    e = one(f"https://{ACCOUNT}-secondary.{service}.core.windows.net/{path}?{token()}", keys=(KEY,))
    assert e.access.account == ACCOUNT
    assert e.access.services == (service,)
    assert e.access.scope.level == level
    assert any("secondary" in n for n in e.notes)
    assert_signed(e)


@pytest.mark.parametrize(
    ("suffix", "cloud_word"),
    [
        ("core.windows.net", "public"),
        ("core.usgovcloudapi.net", "government"),
        ("core.chinacloudapi.cn", "china"),
        ("core.cloudapi.de", "german"),
    ],
)
def test_sovereign_clouds(suffix: str, cloud_word: str) -> None:
    e = one(f"https://{ACCOUNT}.blob.{suffix}/c/a/b.txt?{blob_sas()}", keys=(KEY,))
    a = e.access
    assert a.account == ACCOUNT
    assert a.kind == "service-sas"
    assert a.scope.path == "a/b.txt"
    assert a.cloud is not None
    assert cloud_word in a.cloud.lower()
    assert a.endpoint == f"https://{ACCOUNT}.blob.{suffix}"
    assert_signed(e)


def test_sovereign_cloud_values_differ() -> None:
    clouds = {
        one(f"https://{ACCOUNT}.queue.{suffix}/jobs?{queue_sas()}").access.cloud
        for suffix in (
            "core.windows.net",
            "core.usgovcloudapi.net",
            "core.chinacloudapi.cn",
            "core.cloudapi.de",
        )
    }
    assert len(clouds) == 4
    assert None not in clouds


# --- emulator --------------------------------------------------------------------------------


def test_azurite_path_style_blob() -> None:
    url = f"http://127.0.0.1:10000/{DEV_ACCOUNT}/c/a/b.txt?" + blob_sas(DEV_ACCOUNT, DEV_KEY)
    e = one(url)
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == DEV_ACCOUNT
    assert a.emulator is True
    assert a.services == ("blob",)
    assert a.scope.container == "c"
    assert a.scope.path == "a/b.txt"
    assert a.permissions == "rw"
    # Signed with the published emulator key: found without being given any key.
    assert_signed(e)
    assert e.signature.key_label is not None and "public" in e.signature.key_label
    assert e.severity == Severity.INFO


@pytest.mark.parametrize("host", ["localhost", "[::1]", "host.docker.internal", "azurite"])
def test_azurite_path_style_other_hosts(host: str) -> None:
    url = f"http://{host}:10000/{DEV_ACCOUNT}/c/a/b.txt?" + blob_sas(DEV_ACCOUNT, DEV_KEY)
    e = one(url, keys=(KEY,))
    assert e.access.account == DEV_ACCOUNT
    assert e.access.emulator is True
    assert e.access.scope.path == "a/b.txt"
    assert_signed(e)
    assert e.severity == Severity.INFO


def test_azurite_path_style_queue_port() -> None:
    url = f"http://localhost:10001/{DEV_ACCOUNT}/jobs?" + queue_sas(DEV_ACCOUNT, DEV_KEY)
    e = one(url)
    assert e.access.account == DEV_ACCOUNT
    assert e.access.services == ("queue",)
    assert e.access.scope.container == "jobs"
    assert e.access.emulator is True
    assert_signed(e)
    assert e.severity == Severity.INFO


def test_azurite_production_style_host() -> None:
    url = f"http://{DEV_ACCOUNT}.blob.localhost:10000/c/a/b.txt?" + blob_sas(DEV_ACCOUNT, DEV_KEY)
    e = one(url)
    a = e.access
    assert a.account == DEV_ACCOUNT
    assert a.emulator is True
    assert a.services == ("blob",)
    assert a.scope.path == "a/b.txt"
    assert a.permissions == "rw"
    assert_signed(e)
    assert e.severity == Severity.INFO


def test_azurite_account_sas_is_info_even_with_write() -> None:
    e = one(f"http://127.0.0.1:10000/{DEV_ACCOUNT}?" + account_sas(DEV_ACCOUNT, DEV_KEY))
    assert_account_sas(e, DEV_ACCOUNT)
    assert_signed(e)
    assert e.severity == Severity.INFO


# --- custom domain ---------------------------------------------------------------------------


def test_custom_domain_without_account() -> None:
    url = f"https://files.example.com/c/a/b.txt?{blob_sas()}"
    e = one(url, keys=(KEY,))
    a = e.access
    assert a.account is None
    assert a.account_note is not None and "custom domain" in a.account_note
    assert a.kind == "service-sas"
    assert a.services == ("blob",)
    assert a.scope.path == "a/b.txt"
    assert a.permissions == "rw"
    # Without the account name the signature cannot be recomputed.
    assert e.signature.status == "not-checked"


def test_custom_domain_with_account() -> None:
    url = f"https://files.example.com/c/a/b.txt?{blob_sas()}"
    e = one(url, account=ACCOUNT, keys=(KEY,))
    assert e.access.account == ACCOUNT
    assert e.access.scope.container == "c"
    assert_signed(e)
    # The wrong account name does not verify.
    e = one(url, account="someoneelse", keys=(KEY,))
    assert e.signature.status == "not-signed-with-key"


# --- bare query strings and their escapings --------------------------------------------------


def test_bare_query_with_question_mark() -> None:
    e = one("?" + account_sas(), account=ACCOUNT, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_bare_query_without_question_mark() -> None:
    e = one(account_sas(), account=ACCOUNT, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_bare_query_without_account() -> None:
    e = one(account_sas())
    assert e.access.kind == "account-sas"
    assert e.access.account is None
    assert e.access.account_note is not None
    assert e.signature.status == "not-checked"


def test_bare_table_query_signed() -> None:
    """A table SAS carries its table name (tn), so even the bare query can be verified."""
    e = one(table_sas(), account=ACCOUNT, keys=(KEY,))
    assert e.access.services == ("table",)
    assert e.access.scope.container == "Orders"
    assert_signed(e)


@pytest.mark.parametrize("seed", range(6))
def test_shuffled_parameters(seed: int) -> None:
    rng = random.Random(seed)
    parts = account_sas().split("&")
    rng.shuffle(parts)
    e = one("&".join(parts), account=ACCOUNT, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)

    parts = [*blob_sas().split("&"), "timeout=30"]
    rng.shuffle(parts)
    e = one(f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?" + "&".join(parts), keys=(KEY,))
    assert e.access.scope.path == "a/b.txt"
    assert e.access.permissions == "rw"
    assert_signed(e)


def test_query_url_encoded_once() -> None:
    encoded = quote(account_sas(), safe="")
    assert "=" not in encoded and "&" not in encoded
    e = one(encoded, account=ACCOUNT, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_query_url_encoded_twice() -> None:
    encoded = quote(quote(account_sas(), safe=""), safe="")
    assert "%253D" in encoded
    e = one(encoded, account=ACCOUNT, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_every_value_encoded_twice_in_url() -> None:
    """Each value (not the separators) double-encoded, as by a client that re-quotes."""
    pairs = [p.partition("=") for p in blob_sas().split("&")]
    query = "&".join(f"{k}={quote(v, safe='')}" for k, _, v in pairs)
    assert "%253A" in query
    e = one(f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{query}", keys=(KEY,))
    assert e.access.validity.expiry == EXPIRY
    assert_signed(e)


@pytest.mark.parametrize("times", [1, 2])
def test_full_url_percent_encoded(times: int) -> None:
    """A whole SAS URL percent-encoded, as copied out of a redirect parameter or a log."""
    url = f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{blob_sas()}"
    encoded = url
    for _ in range(times):
        encoded = quote(encoded, safe="")
    e = one(encoded, keys=(KEY,))
    assert e.access.account == ACCOUNT
    assert e.access.scope.path == "a/b.txt"
    assert e.access.permissions == "rw"
    assert e.access.validity.start == START
    assert_signed(e)


def test_html_escaped_url() -> None:
    url = f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{blob_sas()}"
    escaped = html.escape(url)
    assert "&amp;" in escaped
    e = one(escaped, keys=(KEY,))
    assert e.access.account == ACCOUNT
    assert e.access.scope.path == "a/b.txt"
    assert e.access.permissions == "rw"
    assert_signed(e)


def test_html_escaped_bare_query() -> None:
    escaped = account_sas().replace("&", "&amp;")
    e = one(escaped, account=ACCOUNT, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_json_escaped_url_as_in_notebook_output() -> None:
    url = f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{blob_sas()}"
    escaped = url.replace("/", "\\/").replace("&", "\\u0026")
    assert "\\u0026" in escaped and "\\/" in escaped
    cell_output = '{"data": {"text/plain": ["' + escaped + '"]}, "output_type": "execute_result"}'
    e = one(cell_output, keys=(KEY,))
    assert e.access.account == ACCOUNT
    assert e.access.scope.path == "a/b.txt"
    assert e.access.permissions == "rw"
    assert_signed(e)


def test_json_dumps_of_url() -> None:
    """``json.dumps`` leaves ``/`` and ``&`` alone but quotes the value; a second dump
    (a JSON string inside JSON) doubles the backslashes of ``\\u0026``."""
    url = f"https://{ACCOUNT}.queue.core.windows.net/jobs?{queue_sas()}"
    doubled = json.dumps({"url": url.replace("&", "\\u0026")})
    assert "\\\\u0026" in doubled
    e = one(doubled, keys=(KEY,))
    assert e.access.services == ("queue",)
    assert e.access.scope.container == "jobs"
    assert_signed(e)


def test_json_escaped_url_with_non_ascii_blob_name() -> None:
    """``json.dumps`` (ensure_ascii) writes an emoji as a UTF-16 surrogate pair,
    ``\\ud83d\\ude00``; unescaping must rebuild the one character the SDK signed."""
    name = "photos/été-😀.png"
    sas = generate_blob_sas(
        ACCOUNT, "c", name, account_key=KEY, permission="r", expiry=EXPIRY, start=START
    )
    url = f"https://{ACCOUNT}.blob.core.windows.net/c/{name}?{sas}"
    dumped = json.dumps({"url": url})
    assert "\\ud83d\\ude00" in dumped and "\\u00e9" in dumped
    e = one(dumped, keys=(KEY,))
    assert e.access.scope.path == name
    assert_signed(e)


def test_sas_url_percent_encoded_inside_another_url() -> None:
    inner = f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{blob_sas()}"
    outer = "https://login.example.com/redirect?next=" + quote(inner, safe="") + "&lang=en"
    e = one(outer, keys=(KEY,))
    a = e.access
    assert a.account == ACCOUNT
    assert a.services == ("blob",)
    assert a.scope.container == "c"
    assert a.scope.path == "a/b.txt"
    assert a.permissions == "rw"
    assert_signed(e)


# --- connection strings ----------------------------------------------------------------------


def assert_account_key(e: Explanation, key: str = KEY, account: str = ACCOUNT) -> None:
    a = e.access
    assert a.kind == "account-key"
    assert a.account == account
    assert a.services == ALL_FOUR
    assert a.scope.level == "account"
    assert a.permissions is None
    assert e.severity == Severity.CRITICAL
    # The key itself came through intact: its log fingerprint is the SHA-256 of its bytes.
    assert key_fingerprint(key) in e.log_fingerprints["AuthenticationHash"]
    assert e.redacted.startswith(key[:4])


def test_connection_string_with_account_key() -> None:
    cs = (
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={KEY};"
        "EndpointSuffix=core.windows.net"
    )
    e = one(cs)
    assert_account_key(e)
    assert e.access.endpoint == f"https://{ACCOUNT}.blob.core.windows.net"


def test_connection_string_any_order_case_trailing_semicolon() -> None:
    cs = (
        f"accountkey={KEY};ENDPOINTSUFFIX=core.usgovcloudapi.net;accountName={ACCOUNT};"
        "defaultendpointsprotocol=https;"
    )
    e = one(cs)
    assert_account_key(e)
    assert e.access.cloud is not None and "government" in e.access.cloud.lower()


def test_connection_string_split_over_lines() -> None:
    cs = (
        "DefaultEndpointsProtocol=https;\n"
        f"    AccountName={ACCOUNT};\r\n"
        f"    AccountKey={KEY[:40]}\n"
        f"    {KEY[40:]};\n"
        "    EndpointSuffix=core.windows.net\n"
    )
    e = one(cs)
    assert_account_key(e)


def test_connection_string_quoted_in_config() -> None:
    cs = f'"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={KEY}"'
    assert_account_key(one(cs))


def test_connection_string_with_shared_access_signature() -> None:
    cs = (
        f"BlobEndpoint=https://{ACCOUNT}.blob.core.windows.net;"
        f"QueueEndpoint=https://{ACCOUNT}.queue.core.windows.net;"
        f"SharedAccessSignature={account_sas()}"
    )
    e = one(cs, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_connection_string_with_sas_and_xml_escaping() -> None:
    cs = f"BlobEndpoint=https://{ACCOUNT}.blob.core.windows.net/;SharedAccessSignature=" + (
        account_sas().replace("&", "&amp;")
    )
    e = one(cs, keys=(KEY,))
    assert_account_sas(e)
    assert_signed(e)


def test_connection_string_use_development_storage() -> None:
    e = one("UseDevelopmentStorage=true")
    a = e.access
    assert a.kind == "public-dev-key"
    assert a.account == DEV_ACCOUNT
    assert a.emulator is True
    assert e.severity == Severity.INFO


def test_connection_string_explicit_blob_endpoint() -> None:
    cs = (
        f"DefaultEndpointsProtocol=https;BlobEndpoint=https://{ACCOUNT}.blob.core.windows.net/;"
        f"AccountName={ACCOUNT};AccountKey={KEY}"
    )
    e = one(cs)
    assert_account_key(e)
    assert e.access.endpoint == f"https://{ACCOUNT}.blob.core.windows.net"


def test_connection_string_custom_domain_endpoint() -> None:
    cs = (
        "DefaultEndpointsProtocol=https;BlobEndpoint=http://www.mydomain.com;"
        f"AccountName={ACCOUNT};AccountKey={KEY}"
    )
    e = one(cs)
    assert_account_key(e)
    assert e.access.endpoint == "http://www.mydomain.com"


# --- account keys ----------------------------------------------------------------------------


def test_account_key_with_account() -> None:
    e = one(KEY, account=ACCOUNT)
    assert_account_key(e)


def test_account_key_without_account() -> None:
    e = one(KEY)
    assert e.access.kind == "account-key"
    assert e.access.account is None
    assert e.access.account_note is not None
    assert e.severity == Severity.CRITICAL
    assert key_fingerprint(KEY) in e.log_fingerprints["AuthenticationHash"]


def test_public_dev_key_alone() -> None:
    e = one(DEV_KEY)
    assert e.access.kind == "public-dev-key"
    assert e.access.account == DEV_ACCOUNT
    assert e.severity == Severity.INFO


# --- look-alikes -----------------------------------------------------------------------------


def _b64(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode("ascii")


def test_service_bus_sas_is_not_storage() -> None:
    token = (
        "SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net%2F&sig="
        + quote(_b64(32), safe="")
        + "&se=1700000000&skn=RootManageSharedAccessKey"
    )
    with pytest.raises(NotStorageCredential, match="Service Bus"):
        keyscope.explain(token, NOW)


def test_service_bus_sas_without_prefix_is_not_storage() -> None:
    token = (
        "sr=https%3A%2F%2Fns.servicebus.windows.net%2F&sig="
        + quote(_b64(32), safe="")
        + "&se=1700000000&skn=RootManageSharedAccessKey"
    )
    with pytest.raises(NotStorageCredential):
        keyscope.explain(token, NOW)


def test_service_bus_connection_string_is_not_storage() -> None:
    cs = (
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
        f"SharedAccessKey={_b64(32)}"
    )
    with pytest.raises(NotStorageCredential, match="Service Bus"):
        keyscope.explain(cs, NOW)


def test_logic_apps_url_is_not_storage() -> None:
    sig = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")
    url = (
        "https://prod-00.westus.logic.azure.com/workflows/x/triggers/manual/paths/invoke"
        f"?api-version=2016-10-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
    )
    with pytest.raises(NotStorageCredential, match="Logic Apps"):
        keyscope.explain(url, NOW)


def test_lookalikes_are_parse_errors() -> None:
    """Callers catching ParseError also catch the look-alikes."""
    assert issubclass(NotStorageCredential, ParseError)


# --- strict parsing: the message names the offending field -----------------------------------


def _with(query: str, **changes: str | None) -> str:
    """Replace (or, with None, remove) parameters of an encoded query string."""
    out = []
    for part in query.split("&"):
        name = part.partition("=")[0]
        if name in changes:
            value = changes.pop(name)
            if value is not None:
                out.append(f"{name}={value}")
        else:
            out.append(part)
    out += [f"{k}={v}" for k, v in changes.items() if v is not None]
    return "&".join(out)


def _blob_url(query: str) -> str:
    return f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.txt?{query}"


def _parse_error(text: str, field: str) -> str:
    with pytest.raises(ParseError) as info:
        keyscope.explain(text, NOW)
    assert not isinstance(info.value, NotStorageCredential)
    message = str(info.value)
    assert re.search(rf"(?<![a-z]){field}(?![a-z])", message), message
    return message


def test_sanity_of_the_mutation_helper() -> None:
    """The unmodified token parses, so every error below comes from the one change."""
    e = one(_blob_url(_with(blob_sas())), keys=(KEY,))
    assert_signed(e)
    e = one(_with(account_sas()), account=ACCOUNT, keys=(KEY,))
    assert_signed(e)


def test_sig_not_32_bytes() -> None:
    message = _parse_error(_blob_url(_with(blob_sas(), sig=quote(_b64(16), safe=""))), "sig")
    assert "32" in message


def test_sig_not_base64() -> None:
    message = _parse_error(_blob_url(_with(blob_sas(), sig="not-base64*at_all!!")), "sig")
    assert "base64" in message.lower()


def test_sig_missing() -> None:
    _parse_error(_blob_url(_with(blob_sas(), sig=None) + "&sig="), "sig")


@pytest.mark.parametrize("bad", ["2025-13-45", "tomorrow", "2025-01-08T25:00:00Z", "1700000000x"])
def test_bad_expiry_date(bad: str) -> None:
    _parse_error(_blob_url(_with(blob_sas(), se=quote(bad, safe=""))), "se")


def test_bad_start_date() -> None:
    _parse_error(_blob_url(_with(blob_sas(), st="2025-02-30")), "st")


def test_unknown_letter_in_sp_blob() -> None:
    message = _parse_error(_blob_url(_with(blob_sas(), sp="rz")), "sp")
    assert "'z'" in message


def test_unknown_letter_in_sp_account() -> None:
    message = _parse_error(_with(account_sas(), sp="rwq"), "sp")
    assert "'q'" in message


def test_unknown_letter_in_ss() -> None:
    message = _parse_error(_with(account_sas(), ss="bfz"), "ss")
    assert "'z'" in message


def test_unknown_letter_in_srt() -> None:
    message = _parse_error(_with(account_sas(), srt="scx"), "srt")
    assert "'x'" in message


def test_missing_se_for_ad_hoc_service_sas() -> None:
    message = _parse_error(_blob_url(_with(blob_sas(), se=None)), "se")
    assert "missing" in message


def test_account_sas_missing_srt() -> None:
    message = _parse_error(_with(account_sas(), srt=None), "srt")
    assert "missing" in message


def test_account_sas_missing_ss() -> None:
    message = _parse_error(_with(account_sas(), ss=None), "ss")
    assert "missing" in message


def test_spr_http_alone() -> None:
    _parse_error(_blob_url(_with(blob_sas(), spr="http")), "spr")


@pytest.mark.parametrize("bad", ["300.1.1.1", "10.0.0", "10.0.0.1-", "example.com", "::1"])
def test_bad_sip(bad: str) -> None:
    _parse_error(_blob_url(_with(blob_sas(), sip=quote(bad, safe=""))), "sip")


def test_bad_sv() -> None:
    _parse_error(_blob_url(_with(blob_sas(), sv="2020-99-99")), "sv")


def test_unknown_sr() -> None:
    _parse_error(_blob_url(_with(blob_sas(), sr="zz")), "sr")
