"""Every decoded field equals what the Azure SDKs signed (property-based).

Each test mints a real token with the official SDK, explains it, and checks the
decoded model field by field. Recomputing the signature with the same key is the
strongest check: it fails if any signed field was decoded differently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keyscope
from keyscope.model import Explanation
from tests.sdk import NOW, blob_url, new_key

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

accounts = st.from_regex(r"[a-z0-9]{3,24}", fullmatch=True)
containers = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True).filter(
    lambda c: "--" not in c
)
blob_names = st.lists(
    st.text(alphabet="abcXYZ019 -_.()äé€", min_size=1, max_size=12).filter(
        lambda s: s not in (".", "..")
    ),
    min_size=1, max_size=4,
).map("/".join)
instants = st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2080, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
windows = st.tuples(instants, st.integers(min_value=60, max_value=40 * 365 * 86400)).map(
    lambda t: (t[0], t[0] + timedelta(seconds=t[1]))
)
octets = st.integers(min_value=0, max_value=255)
ipv4 = st.tuples(octets, octets, octets, octets).map(lambda t: ".".join(map(str, t)))
ips = st.none() | ipv4 | st.tuples(ipv4, ipv4).map("-".join)
protocols = st.sampled_from([None, "https", "https,http"])
scopes = st.none() | st.from_regex(r"[a-z0-9]{3,12}", fullmatch=True)
header_values = st.none() | st.text(alphabet="abz AZ09;=\"/.-_%é", min_size=1, max_size=20)


def letters(order: str) -> st.SearchStrategy[str]:
    return st.sets(st.sampled_from(order), min_size=1).map(
        lambda s: "".join(c for c in order if c in s)
    )


def one(text: str, *keys: str, account: str | None = None) -> Explanation:
    (e,) = keyscope.explain(text, NOW, keys=keys, account=account)
    return e


def assert_common(e: Explanation, *, sp: str | None, window: tuple[datetime, datetime] | None,
                  ip: str | None, protocol: str | None) -> None:
    a = e.access
    assert a.permissions == sp
    if sp is not None:
        assert "".join(c.letter for c in a.capabilities) == sp
    if window is not None:
        assert a.validity.start == window[0]
        assert a.validity.expiry == window[1]
    assert a.network.ip_range == ip
    expected = ("https",) if protocol == "https" else ("https", "http")
    assert a.network.protocols == expected


@SETTINGS
@given(account=accounts, services=letters("bfqt").flatmap(st.permutations),
       srt=letters("sco"), sp=letters("rwdxylacuptfi"), window=windows, ip=ips,
       protocol=protocols, ses=scopes)
def test_account_sas(account: str, services: list[str], srt: str, sp: str,
                     window: tuple[datetime, datetime], ip: str | None,
                     protocol: str | None, ses: str | None) -> None:
    from azure.storage.blob import generate_account_sas

    key = new_key()
    sas = generate_account_sas(account, key, resource_types=srt, permission=sp,
                               expiry=window[1], start=window[0], ip=ip,
                               services="".join(services), protocol=protocol,
                               encryption_scope=ses)
    e = one(f"https://{account}.queue.core.windows.net/anything?{sas}", key)
    a = e.access
    assert a.kind == "account-sas"
    assert a.account == account
    assert a.services == tuple(n for c, n in zip("bfqt", ("blob", "file", "queue", "table"),
                                                  strict=True) if c in services)
    assert a.details["resource_types"] == [
        n for c, n in zip("sco", ("service", "container", "object"), strict=True) if c in srt
    ]
    assert a.scope.level == "account"
    assert a.details.get("encryption_scope") == ses
    assert_common(e, sp=sp, window=window, ip=ip, protocol=protocol)
    assert e.signature.status == "signed-with-key"
    wrong = one(f"https://{account}.blob.core.windows.net/?{sas}", new_key())
    assert wrong.signature.status == "not-signed-with-key"
    assert not a.revocation.individually_revocable


@SETTINGS
@given(account=accounts, container=containers, blob=blob_names,
       kind=st.sampled_from(["b", "c", "bs", "bv", "d"]), sp=letters("racwdxytmeopi"),
       window=windows, ip=ips, protocol=protocols, dfs=st.booleans(), ses=scopes,
       disposition=header_values, content_type=header_values)
def test_blob_service_sas(account: str, container: str, blob: str, kind: str, sp: str,
                          window: tuple[datetime, datetime], ip: str | None,
                          protocol: str | None, dfs: bool, ses: str | None,
                          disposition: str | None, content_type: str | None) -> None:
    from azure.storage.blob import generate_blob_sas, generate_container_sas

    key = new_key()
    common = dict(account_key=key, permission=sp, expiry=window[1], start=window[0], ip=ip,
                  protocol=protocol, encryption_scope=ses, content_disposition=disposition,
                  content_type=content_type)
    snapshot = "2026-01-02T03:04:05.1234567Z"
    extra = ""
    if kind == "c":
        sas = generate_container_sas(account, container, **common)
        name = None
    elif kind == "bs":
        sas = generate_blob_sas(account, container, blob, snapshot=snapshot, **common)
        name, extra = blob, f"&snapshot={quote(snapshot)}"
    elif kind == "bv":
        sas = generate_blob_sas(account, container, blob, version_id=snapshot, **common)
        name, extra = blob, f"&versionid={quote(snapshot)}"
    elif kind == "d":
        sas = generate_blob_sas(account, container, blob, is_directory=True, **common)
        name = blob
    else:
        sas = generate_blob_sas(account, container, blob, **common)
        name = blob
    host = "dfs.core.windows.net" if dfs else "blob.core.windows.net"
    e = one(blob_url(account, container, name, sas, host) + extra, key)
    a = e.access
    assert a.kind == "service-sas"
    assert a.account == account
    assert a.services == (("dfs",) if dfs else ("blob",))
    assert a.details["signed_resource"] == kind
    assert a.scope.container == container
    level = {"b": "blob", "c": "container", "bs": "snapshot", "bv": "version",
             "d": "directory"}[kind]
    assert a.scope.level == level
    if kind != "c":
        assert a.scope.path == blob
    if kind == "d":
        assert a.scope.directory_depth == len(blob.split("/"))
    if kind == "bs":
        assert a.scope.snapshot == snapshot
    assert a.details.get("encryption_scope") == ses
    overrides = {k: v for k, v in (("rscd", disposition), ("rsct", content_type)) if v}
    assert a.details.get("response_header_overrides", {}) == overrides
    assert_common(e, sp=sp, window=window, ip=ip, protocol=protocol)
    assert e.signature.status == "signed-with-key", e.signature.detail


@SETTINGS
@given(account=accounts, container=containers, blob=st.none() | blob_names,
       policy=st.from_regex(r"[A-Za-z0-9-]{1,64}", fullmatch=True))
def test_stored_policy_sas(account: str, container: str, blob: str | None, policy: str) -> None:
    from azure.storage.blob import generate_blob_sas, generate_container_sas

    key = new_key()
    if blob is None:
        sas = generate_container_sas(account, container, account_key=key, policy_id=policy)
    else:
        sas = generate_blob_sas(account, container, blob, account_key=key, policy_id=policy)
    e = one(blob_url(account, container, blob, sas), key)
    a = e.access
    assert a.kind == "service-policy-sas"
    assert a.details["stored_policy"] == policy
    assert a.permissions is None and a.validity.expiry is None
    assert a.revocation.individually_revocable
    assert f"--name {policy}" in a.revocation.steps[0].command  # type: ignore[operator]
    assert "not visible" in e.sentence
    assert e.signature.status == "signed-with-key"
    assert {r.code for r in e.reasons} >= {"hidden-lifetime"}


@SETTINGS
@given(account=accounts, container=containers, blob=blob_names, sp=letters("racwdxytmeopi"),
       window=windows, key_days=st.integers(min_value=1, max_value=7),
       version=st.sampled_from(["2018-11-09", "2020-02-10", "2020-12-06", "2025-07-05",
                                "2026-04-06"]),
       container_level=st.booleans(), delegated_user=st.booleans())
def test_user_delegation_sas(account: str, container: str, blob: str, sp: str,
                             window: tuple[datetime, datetime], key_days: int, version: str,
                             container_level: bool, delegated_user: bool) -> None:
    from azure.storage.blob import UserDelegationKey, generate_blob_sas, generate_container_sas

    udk = UserDelegationKey()
    udk.signed_oid = str(uuid.uuid4())
    udk.signed_tid = str(uuid.uuid4())
    udk.signed_start = window[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    key_expiry = window[0] + timedelta(days=key_days)
    udk.signed_expiry = key_expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    udk.signed_service = "b"
    udk.signed_version = version
    udk.value = new_key()
    oid = str(uuid.uuid4()) if delegated_user else None
    common = dict(user_delegation_key=udk, permission=sp, expiry=window[1], start=window[0],
                  user_delegation_oid=oid)
    if container_level:
        sas = generate_container_sas(account, container, **common)
        url = blob_url(account, container, None, sas)
    else:
        sas = generate_blob_sas(account, container, blob, **common)
        url = blob_url(account, container, blob, sas)
    e = one(url, udk.value)
    a = e.access
    assert a.kind == "user-delegation-sas"
    ud = a.details["user_delegation"]
    assert isinstance(ud, dict)
    assert ud["skoid"] == udk.signed_oid and ud["sktid"] == udk.signed_tid
    assert ud["sks"] == "b" and ud["skv"] == version
    assert ud.get("sduoid") == oid
    assert a.validity.key_expiry == key_expiry
    assert a.validity.effective_expiry == min(window[1], key_expiry)
    assert_common(e, sp=sp, window=window, ip=None, protocol=None)
    assert "revoke-delegation-keys" in (a.revocation.steps[0].command or "")
    assert e.signature.status == "signed-with-key", e.signature.detail


@SETTINGS
@given(account=accounts, share=containers, path=blob_names, share_level=st.booleans(),
       window=windows, ip=ips, data=st.data())
def test_file_and_share_sas(account: str, share: str, path: str, share_level: bool,
                            window: tuple[datetime, datetime], ip: str | None,
                            data: st.DataObject) -> None:
    from azure.storage.fileshare import generate_file_sas, generate_share_sas

    key = new_key()
    sp = data.draw(letters("rcwdl" if share_level else "rcwd"))
    if share_level:
        sas = generate_share_sas(account, share, key, permission=sp, expiry=window[1],
                                 start=window[0], ip=ip)
        url = f"https://{account}.file.core.windows.net/{quote(share)}?{sas}"
    else:
        sas = generate_file_sas(account, share, path.split("/"), key, permission=sp,
                                expiry=window[1], start=window[0], ip=ip)
        url = f"https://{account}.file.core.windows.net/{quote(share)}/{quote(path)}?{sas}"
    e = one(url, key)
    a = e.access
    assert a.kind == "service-sas" and a.services == ("file",)
    assert a.scope.level == ("share" if share_level else "file")
    assert a.scope.container == share
    assert_common(e, sp=sp, window=window, ip=ip, protocol=None)
    assert e.signature.status == "signed-with-key", e.signature.detail


@SETTINGS
@given(account=accounts, queue=containers, sp=letters("raup"), window=windows, ip=ips)
def test_queue_sas(account: str, queue: str, sp: str, window: tuple[datetime, datetime],
                   ip: str | None) -> None:
    from azure.storage.queue import generate_queue_sas

    key = new_key()
    sas = generate_queue_sas(account, queue, key, permission=sp, expiry=window[1],
                             start=window[0], ip=ip)
    e = one(f"https://{account}.queue.core.windows.net/{queue}/messages?{sas}", key)
    a = e.access
    assert a.kind == "service-sas" and a.services == ("queue",)
    assert a.scope.level == "queue" and a.scope.container == queue
    assert_common(e, sp=sp, window=window, ip=ip, protocol=None)
    if "p" in sp:
        assert "dequeue" in a.destructive
        assert any(c.letter == "p" and "dequeue" in c.meaning for c in a.capabilities)
    assert e.signature.status == "signed-with-key", e.signature.detail


@SETTINGS
@given(account=accounts, table=st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,20}", fullmatch=True),
       sp=letters("raud"), window=windows, ip=ips, protocol=protocols,
       keys=st.tuples(*(st.none() | st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
                        for _ in range(4))))
def test_table_sas(account: str, table: str, sp: str, window: tuple[datetime, datetime],
                   ip: str | None, protocol: str | None,
                   keys: tuple[str | None, str | None, str | None, str | None]) -> None:
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import generate_table_sas

    key = new_key()
    spk, srk, epk, erk = keys
    sas = generate_table_sas(AzureNamedKeyCredential(account, key), table, permission=sp,
                             expiry=window[1], start=window[0], ip_address_or_range=ip,
                             protocol=protocol, start_pk=spk, start_rk=srk, end_pk=epk,
                             end_rk=erk)
    e = one(f"https://{account}.table.core.windows.net/{table}?{sas}", key)
    a = e.access
    assert a.kind == "service-sas" and a.services == ("table",)
    assert a.scope.level == "table" and a.scope.container == table
    expected_range = {k: v for k, v in zip(("spk", "srk", "epk", "erk"), keys, strict=True)
                      if v is not None}
    assert (a.scope.table_range or {}) == expected_range
    assert_common(e, sp=sp, window=window, ip=ip, protocol=protocol)
    assert e.signature.status == "signed-with-key", e.signature.detail


@SETTINGS
@given(account=accounts, fs=containers, directory=blob_names, sp=letters("racwdlmeop"),
       window=windows)
def test_datalake_directory_sas(account: str, fs: str, directory: str, sp: str,
                                window: tuple[datetime, datetime]) -> None:
    from azure.storage.filedatalake import generate_directory_sas

    key = new_key()
    sas = generate_directory_sas(account, fs, directory, key, permission=sp, expiry=window[1],
                                 start=window[0])
    url = f"https://{account}.dfs.core.windows.net/{quote(fs)}/{quote(directory)}?{sas}"
    e = one(url, key)
    a = e.access
    assert a.kind == "service-sas" and a.services == ("dfs",)
    assert a.scope.level == "directory" and a.scope.path == directory
    assert a.scope.directory_depth == len(directory.split("/"))
    assert_common(e, sp=sp, window=window, ip=None, protocol=None)
    assert e.signature.status == "signed-with-key", e.signature.detail
    assert any("blob endpoint" in n for n in e.notes)
