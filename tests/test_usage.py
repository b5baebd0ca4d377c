"""keyscope usage: storage logs written exactly as documented, tokens minted by the
Azure SDK with fake keys, hashes computed here by the documented formula; every request
made with a watched credential is attributed to it and no other request is."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from keyscope.usage import logfiles
from keyscope.usage.render import render_json, usage_document
from keyscope.usage.run import UsageResult, find_usage
from keyscope.usage.watched import Watched, from_tokens
from tests.storage_logs import (
    Request,
    analytics_csv,
    analytics_json,
    classic_line,
    key_hash,
    resource_line,
    sas_hash,
    signature_of,
)

ACCOUNT = "leakyacct"
KEY1 = base64.b64encode(hashlib.sha512(b"usage test key1").digest()).decode()
KEY2 = base64.b64encode(hashlib.sha512(b"usage test key2").digest()).decode()
LEAK = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T0 = datetime(2026, 2, 27, 8, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _account_sas(key: str, expiry: datetime | str, permission: str = "rwdl") -> str:
    from azure.storage.blob import generate_account_sas

    return generate_account_sas(ACCOUNT, key, resource_types="sco", permission=permission,
                                expiry=expiry, services="b")


def leaked_url() -> str:
    """An account SAS whose signature holds '+', '/' and '=' (found by trying expiries)."""
    base = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    for s in range(5000):
        url = f"https://{ACCOUNT}.blob.core.windows.net/models/ckpt.bin?" + _account_sas(
            KEY1, base + timedelta(seconds=s))
        sig = signature_of(url)
        if "+" in sig and "/" in sig and sig.endswith("="):
            return url
    raise AssertionError("no signature with + and /")


def blob_url() -> str:
    from azure.storage.blob import generate_blob_sas

    sas = generate_blob_sas(ACCOUNT, "data", "dir/b.txt", account_key=KEY2, permission="rw",
                            start=datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
                            expiry=datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC))
    return f"https://{ACCOUNT}.blob.core.windows.net/data/dir/b.txt?{sas}"


@dataclass
class World:
    """The watched credentials, every request, and which watched index made each."""

    urls: dict[str, str]
    watched: list[Watched]
    requests: list[Request] = field(default_factory=list)
    made_by: list[set[str]] = field(default_factory=list)  # names of credentials per request


NAMES = ("A", "B", "K1", "W")  # watched: leaked SAS, blob SAS, key1, weak (date-only se)


def _request(n: int, url: str, op: str, status: int, text: str, classic: str, when: datetime,
             auth: str, token_hash: str, category: str, written: int = 0,
             read: int = 0) -> Request:
    return Request(time=when, operation=op, status=status, status_text=text,
                   classic_status=classic, url=url, ip=f"10.{n // 250}.{n % 250}.7",
                   port=40000 + n, user_agent=f'agent {n}; "x" & y',
                   account=ACCOUNT, auth_type=auth, token_hash=token_hash, category=category,
                   request_bytes=written, response_bytes=read)


@pytest.fixture(scope="module")
def world() -> World:
    a = leaked_url()
    b = blob_url()
    c = a.replace(a.split("sig=")[1], "") + _account_sas(KEY2, _expiry_of(a)).split(
        "sig=")[1]  # A's parameters, signed with the other key
    w = f"https://{ACCOUNT}.blob.core.windows.net/models/x?" + _account_sas(
        KEY1, "2031-01-01", permission="r")
    conn = (f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={KEY1};"
            "EndpointSuffix=core.windows.net")
    urls = {"A": a, "B": b, "C": c, "W": w}
    watched = from_tokens([a, b, conn, w])
    assert [x.kind for x in watched] == ["sas", "sas", "account-key", "sas"]
    world = World(urls, watched)
    k1, k2 = key_hash(KEY1), key_hash(KEY2)
    n = 0

    def add(made: set[str], *args: object, **kw: object) -> None:
        nonlocal n
        world.requests.append(_request(n, *args, **kw))  # type: ignore[arg-type]
        world.made_by.append(made)
        n += 1

    blob = "https://{0}.blob.core.windows.net/{1}?"
    for i, when in enumerate([T0, LEAK - timedelta(seconds=1), LEAK, LEAK + timedelta(days=3)]):
        q = a.split("?", 1)[1]
        add({"A", "K1"}, blob.format(ACCOUNT, f"models/ckpt{i}.bin") + q, "GetBlob", 200,
            "Success", "SASSuccess", when, "SAS", f"key1({k1}),SasSignature({sas_hash(a)})",
            "StorageRead", read=1000 + i)
    q = a.split("?", 1)[1]
    add({"A", "K1"}, blob.format(ACCOUNT, "models/new.bin") + q, "PutBlob", 201, "Success",
        "SASSuccess", LEAK + timedelta(days=4), "SAS",
        f"key1({k1}),SasSignature({sas_hash(a)})", "StorageWrite", written=77)
    add({"A", "K1"}, blob.format(ACCOUNT, "models/old.bin") + q, "DeleteBlob", 202,
        "Success", "SASSuccess", LEAK + timedelta(days=5), "SAS",
        f"key1({k1}),SasSignature({sas_hash(a)})", "StorageDelete")
    add({"A", "K1"}, blob.format(ACCOUNT, "models") + q + "&restype=container&comp=list",
        "ListBlobs", 200, "Success", "SASSuccess", LEAK + timedelta(days=6), "SAS",
        f"key1({k1}),SasSignature({sas_hash(a)})", "StorageRead", read=5)
    add({"A", "K1"}, blob.format(ACCOUNT, "models/ckpt.bin") + q, "GetBlob", 403,
        "AuthorizationPermissionMismatch", "SASAuthorizationError",
        LEAK + timedelta(days=7), "SAS", f"key1({k1}),SasSignature({sas_hash(a)})",
        "StorageRead")
    add({"A", "K1"}, blob.format(ACCOUNT, "models/missing.bin") + q, "GetBlob", 404,
        "BlobNotFound", "SASClientOtherError", LEAK + timedelta(days=8), "SAS",
        f"key1({k1}),SasSignature({sas_hash(a)})", "StorageRead")
    bq = b.split("?", 1)[1]
    for i in range(3):
        add({"B"}, blob.format(ACCOUNT, "data/dir/b.txt") + bq, "GetBlob" if i else "PutBlob",
            200 if i else 201, "Success", "SASSuccess", T0 + timedelta(hours=i), "SAS",
            f"key2({k2}),SasSignature({sas_hash(b)})",
            "StorageRead" if i else "StorageWrite")
    wq = w.split("?", 1)[1]
    add({"W", "K1"}, blob.format(ACCOUNT, "models/w.bin") + wq, "GetBlob", 200, "Success",
        "SASSuccess", T0, "SAS", f"key1({k1}),SasSignature({sas_hash(w)})", "StorageRead")
    # A's parameters, another signature: only the hash tells them apart (no classic line)
    cq = c.split("?", 1)[1]
    add({"C"}, blob.format(ACCOUNT, "models/c.bin") + cq, "GetBlob", 200, "Success",
        "SASSuccess", T0, "SAS", f"key2({k2}),SasSignature({sas_hash(c)})", "StorageRead")
    for i in range(2):
        add({"K1"}, blob.format(ACCOUNT, "") + "restype=service&comp=properties",
            "GetBlobServiceProperties", 200, "Success", "Success", T0 + timedelta(minutes=i),
            "AccountKey", f"key1({k1})", "StorageRead")
    add(set(), blob.format(ACCOUNT, "") + "restype=service&comp=properties",
        "GetBlobServiceProperties", 200, "Success", "Success", T0, "AccountKey",
        f"key2({k2})", "StorageRead")
    # an OAuth request: bare hash
    add(set(), blob.format(ACCOUNT, "models/ckpt.bin")[:-1], "GetBlob", 200, "Success",
        "Success", T0, "OAuth", hashlib.sha256(b"bearer").hexdigest().upper(), "StorageRead")
    return world


def _expiry_of(url: str) -> datetime:
    from urllib.parse import parse_qs, urlsplit

    se = parse_qs(urlsplit(url).query)["se"][0]
    return datetime.strptime(se, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _classic_requests(world: World) -> list[tuple[Request, set[str]]]:
    """What a $logs file holds: SAS requests only (key requests are "authenticated",
    and C shares A's parameters, which only the missing hash could tell apart)."""
    return [(r, {m for m in made if m != "K1"}) for r, made in zip(world.requests,
                                                                    world.made_by, strict=True)
            if r.auth_type == "SAS" and "C" not in made]


def _write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _forms(world: World, tmp: Path) -> dict[str, tuple[Path, list[tuple[Request, set[str]]]]]:
    every = list(zip(world.requests, world.made_by, strict=True))
    classic = _classic_requests(world)
    return {
        "resource": (_write(tmp / "PT1H.json", "".join(resource_line(r) + "\n"
                                                       for r, _ in every)), every),
        "resource-gz": (_write(tmp / "PT1H.json.gz", "".join(resource_line(r) + "\n"
                                                             for r, _ in every), gz=True),
                        every),
        "classic-1.0": (_write(tmp / "000000.log", "".join(
            classic_line(r, "1.0") + "\n" for r, _ in classic)), classic),
        "classic-2.0": (_write(tmp / "000001.log", "".join(
            classic_line(r, "2.0") + "\n" for r, _ in classic)), classic),
        "analytics-csv": (_write(tmp / "export.csv", analytics_csv([r for r, _ in every])),
                          every),
        "analytics-json": (_write(tmp / "export.json", analytics_json([r for r, _ in every])),
                           every),
    }


def _callers(result: UsageResult, index: int) -> set[str]:
    tally = result.tallies.get(index)
    return set(tally.callers) if tally else set()


def test_hashes_follow_the_documented_formula(world: World) -> None:
    a = world.watched[0]
    sig = signature_of(world.urls["A"])
    assert "+" in sig and "/" in sig and sig.endswith("=")
    assert a.sas_hash == sas_hash(world.urls["A"])
    assert world.watched[2].key_hash == key_hash(KEY1)
    # the token as the SDK printed it: '+' and '=' percent-encoded; a URL decoder that
    # turned '+' into a space would hash something else
    assert "%2B" in world.urls["A"] or "+" in world.urls["A"].split("sig=")[1]
    wrong = hashlib.sha256(sig.replace("+", " ").encode()).hexdigest().upper()
    assert a.sas_hash != wrong


@pytest.mark.parametrize("form", ["resource", "resource-gz", "classic-1.0", "classic-2.0",
                                  "analytics-csv", "analytics-json"])
def test_every_request_attributed_to_its_credential_and_no_other(
    world: World, tmp_path: Path, form: str
) -> None:
    path, requests = _forms(world, tmp_path)[form]
    result = find_usage([path], world.watched, jobs=1)
    assert result.counts.malformed == 0
    for index, name in enumerate(NAMES):
        expected = {r.ip for r, made in requests if name in made}
        assert _callers(result, index) == expected, (form, name)
        tally = result.tallies.get(index)
        assert (tally.requests if tally else 0) == len(expected)
    # every line was counted, even those never parsed
    assert result.counts.lines == (len(requests) + (1 if form == "analytics-csv" else 0)
                                   if form != "analytics-json"
                                   else path.read_text().count("\n"))


def test_strength_is_stated(world: World, tmp_path: Path) -> None:
    forms = _forms(world, tmp_path)
    resource = find_usage([forms["resource"][0]], world.watched, jobs=1)
    assert resource.tallies[0].strengths == {"exact": 9}
    classic = find_usage([forms["classic-2.0"][0]], world.watched, jobs=1)
    assert classic.tallies[0].strengths == {"strong": 9}  # se to the second
    assert classic.tallies[1].strengths == {"strong": 3}  # st/se to the second, sr=b path
    assert classic.tallies[3].strengths == {"weak": 1}  # se=2031-01-01, nothing distinctive
    assert 2 not in classic.tallies  # an account key is never in a $logs SAS line


def test_usage_figures(world: World, tmp_path: Path) -> None:
    path = _forms(world, tmp_path)["resource"][0]
    watched = list(world.watched)
    watched[0] = Watched(**{**watched[0].__dict__, "leaked_at": LEAK})
    doc = usage_document(find_usage([path], watched, jobs=1), NOW)
    a = doc["credentials"][0]
    assert (a["requests"], a["accepted"], a["refused"], a["failed"]) == (9, 7, 1, 1)
    assert a["after_leak"] == {"count": 5, "first": "2026-03-01T12:00:00Z",
                               "last": "2026-03-07T12:00:00Z"}
    assert a["writes"] == {"PutBlob": 1} and a["deletes"] == {"DeleteBlob": 1}
    assert a["refused_reasons"] == {"AuthorizationPermissionMismatch": 1}
    assert a["bytes_read"] == 1000 + 1001 + 1002 + 1003 + 5 and a["bytes_written"] == 77
    assert a["signing_keys"] == {"key1": 9}
    assert a["first_use"] == "2026-02-27T08:00:00Z" and a["used"] is True
    ops = {(o["operation"], o["status"]): o["count"] for o in a["operations"]}
    assert ops[("GetBlob", 200)] == 4 and ops[("GetBlob", 403)] == 1
    caller = next(c for c in a["callers"] if c["address"] == "10.0.0.7")
    assert caller == {"address": "10.0.0.7", "first": "2026-02-27T08:00:00Z",
                      "last": "2026-02-27T08:00:00Z", "count": 1}
    assert {u["user_agent"] for u in a["user_agents"]} >= {'agent 0; "x" & y'}
    b = doc["credentials"][1]
    assert b["signing_keys"] == {"key2": 3} and b["leaked_at"] is None
    assert b["writes"] == {"PutBlob": 1}
    assert doc["credentials"][2]["requests"] == 9 + 1 + 2  # A's, W's and its own


def test_json_matches_schema_and_holds_no_secret(world: World, tmp_path: Path) -> None:
    forms = _forms(world, tmp_path)
    result = find_usage([p for p, _ in forms.values()], world.watched, jobs=1)
    text = render_json(result, NOW)
    schema = json.loads(files("keyscope").joinpath("schemas/usage-v1.json").read_text())
    jsonschema.validate(json.loads(text), schema)
    for url in world.urls.values():
        assert signature_of(url)[:12] not in text
    assert KEY1[:12] not in text


def test_hostile_lines_are_counted_and_skipped(world: World, tmp_path: Path) -> None:
    a = world.requests[0]
    good = resource_line(a)
    h = sas_hash(world.urls["A"]).encode()
    hostile = [
        good[: len(good) // 2],  # truncated
        '{"identity": {"tokenHash": "SasSignature(' + h.decode() + ')"}}',  # no operation
        '["SasSignature(' + h.decode() + ')"]',  # not an object
        '{"time": "not a time", "operationName": "GetBlob", "x": "' + h.decode() + '"}',
        good.replace('"statusCode":200', '"statusCode":"two hundred"'),
        "\x00" * 10 + h.decode(),
        '{"a": ' * 5000 + h.decode(),  # deep nesting, truncated
    ]
    lines = [good.encode()] + [x.encode() for x in hostile]
    lines.append(b"\xff\xfe" + h)  # not UTF-8
    lines.append(b"{" + b"x" * (logfiles.MAX_LINE + 10) + h)  # over the line limit
    lines.append(good.encode())
    path = tmp_path / "hostile.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = find_usage([path], world.watched, jobs=1)
    assert result.counts.malformed == len(hostile) + 1
    assert result.counts.oversize == 1
    assert result.counts.lines == len(lines)
    assert result.tallies[0].requests == 2
    classic = tmp_path / "hostile.log"
    line = classic_line(a, "2.0")
    se = "se=" + line.split("se=")[1].split("&")[0]
    bad = [
        line.rsplit(";", 3)[0],  # truncated: too few fields
        line + ";extra",  # too many
        line.replace('y";', 'y;', 1),  # an unbalanced quote swallows the fields after it
        "2.0;yesterday;GetBlob;SASSuccess;200;" + se,
        "3.0;" + line[4:],  # unknown version
    ]
    classic.write_text("\n".join([line, *bad, line]) + "\n")
    result = find_usage([classic], world.watched, jobs=1)
    assert result.counts.malformed == len(bad)
    assert result.tallies[0].requests == 2


def test_a_truncated_gzip_and_unknown_files_are_reported(world: World, tmp_path: Path) -> None:
    body = "".join(resource_line(r) + "\n" for r in world.requests)
    data = gzip.compress(body.encode())
    (tmp_path / "cut.json.gz").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty.log").write_bytes(b"")
    broken = tmp_path / "array.json"
    broken.write_text(analytics_json(world.requests[:3])[:-40])  # no closing bracket
    result = find_usage([tmp_path], world.watched, jobs=1)
    reasons = dict(result.counts.skipped)
    assert "read error" in reasons[str(tmp_path / "cut.json.gz")]
    assert "not a storage log" in reasons[str(tmp_path / "notes.txt")]
    assert reasons[str(tmp_path / "empty.log")] == "empty"
    assert result.counts.malformed >= 1
    assert result.tallies[0].requests >= 2  # what came before the cut was read


def test_ranges_in_parallel_give_the_serial_answer(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfiles, "RANGE", 4096)
    monkeypatch.setattr(logfiles, "CHUNK", 1000)
    every = list(zip(world.requests, world.made_by, strict=True))
    text = "".join(resource_line(r) + "\n" for r, _ in every * 40)
    path = _write(tmp_path / "big.json", text)
    serial = usage_document(find_usage([path], world.watched, jobs=1), NOW)
    parallel_result = find_usage([path], world.watched, jobs=2)
    parallel = usage_document(parallel_result, NOW)
    assert len(logfiles.plan([path], 2)[0]) > 2
    for doc in (serial, parallel):
        doc["logs"]["seconds"] = 0
    assert parallel == serial
    assert serial["logs"]["lines"] == len(every) * 40
    assert serial["credentials"][0]["requests"] == 9 * 40


def test_lines_are_counted_the_same_without_numpy(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _forms(world, tmp_path)["classic-2.0"][0]
    with_numpy = find_usage([path], world.watched, jobs=1)
    monkeypatch.setattr(logfiles, "_np", None)
    without = find_usage([path], world.watched, jobs=1)
    assert with_numpy.counts.lines == without.counts.lines == len(path.read_text().splitlines())
    assert logfiles.count_lines(b"a\nb\nc", 2, 5) == 1
