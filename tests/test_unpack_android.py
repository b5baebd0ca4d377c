"""Android apps (``unpack/android/``): a real signed APK, built once per session with
the Debian Android tools (aapt, smali, zipalign, apksigner, keytool from the JDK; gcc
for the native library), holds a SAS signed by the Azure SDK or a connection string
in each place an app keeps one: ``res/values/strings.xml`` (``resources.arsc``), a
smali ``static final String`` (``classes.dex``), the manifest's ``<meta-data>``
(binary XML), a compiled ``res/xml`` file, ``assets/`` and ``lib/<abi>/*.so``. Each
finding names its member (``app.apk!/resources.arsc!/string/storage_url:1:1``) in
every output format; damaged, truncated and hostile DEX/AXML/ARSC bytes end in a
Skipped entry, never in an exception or a hang."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.model import ScanResult, Skipped
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from keyscope.unpack import registry
from keyscope.unpack.android.arsc import ArscExpander
from keyscope.unpack.android.axml import AxmlExpander
from keyscope.unpack.android.binary import Output
from keyscope.unpack.android.dex import DexExpander, dex_strings, mutf8
from keyscope.unpack.interface import Budget, Expander, UnpackLimits
from tests.sdk import NOW, incident_url, new_key
from tests.test_fuzz_parsers import EXAMPLES, no_hang

SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"
SCAN_SCHEMA = Path(__file__).resolve().parents[1] / "src" / "keyscope" / "schemas" / "scan-v1.json"
FRAMEWORK = Path("/usr/share/android-framework-res/framework-res.apk")
TOOLS = ("aapt", "smali", "zipalign", "apksigner", "keytool", "dexdump", "gcc")
MISSING = [t for t in TOOLS if shutil.which(t) is None] + ([] if FRAMEWORK.exists() else
                                                            ["android-framework-res"])
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"needs the Android build tools (scripts/os-packages.txt): {MISSING}"
)


ACCOUNTS = ("fracct", "resacct", "arrayacct", "dexacct", "manifestacct", "xmlacct",
            "assetacct", "libacct")


@dataclass(frozen=True)
class App:
    """The signed APK and the secret each place of it holds (by account name)."""

    apk: Path
    secrets: dict[str, str]  # account → the secret as written


def _connection(account: str) -> str:
    return (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={new_key()};"
            "EndpointSuffix=core.windows.net")


def _run(cwd: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;")


def build_apk(work: Path) -> App:
    """A real APK: aapt packages the manifest, resources and assets, smali assembles
    the DEX, gcc compiles the native library; zipalign and apksigner (v1-v3) sign."""
    secrets = {
        "resacct": incident_url("resacct", new_key()),  # strings.xml → resources.arsc
        "fracct": incident_url("fracct", new_key()),  # values-fr/strings.xml: a translation
        "arrayacct": _connection("arrayacct"),  # a <string-array> item (a map entry)
        "dexacct": _connection("dexacct"),  # a smali constant → classes.dex
        "manifestacct": _connection("manifestacct"),  # <meta-data android:value>
        "xmlacct": incident_url("xmlacct", new_key()),  # res/xml/storage.xml
        "assetacct": incident_url("assetacct", new_key()),  # assets/config.json
        "libacct": _connection("libacct"),  # lib/x86_64/libstorage.so
    }
    for d in ("res/values", "res/values-fr", "res/xml", "assets", "smali/com/example/keyscope",
              "lib/x86_64"):
        (work / d).mkdir(parents=True)
    (work / "AndroidManifest.xml").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="com.example.keyscope" android:versionCode="1" android:versionName="1.0">
  <uses-sdk android:minSdkVersion="21" android:targetSdkVersion="29" />
  <application android:label="@string/app_name">
    <meta-data android:name="storage.connection"
        android:value="{_xml(secrets["manifestacct"])}" />
    <meta-data android:name="storage.url" android:value="@string/storage_url" />
  </application>
</manifest>
""")
    (work / "res/values/strings.xml").write_text(f"""<resources>
  <string name="app_name">Fixture</string>
  <string name="storage_url" formatted="false">{_xml(secrets["resacct"])}</string>
  <string-array name="endpoints">
    <item>https://example.com/</item>
    <item>{_xml(secrets["arrayacct"])}</item>
  </string-array>
</resources>
""")
    (work / "res/values-fr/strings.xml").write_text(f"""<resources>
  <string name="storage_url" formatted="false">{_xml(secrets["fracct"])}</string>
</resources>
""")
    (work / "res/xml/storage.xml").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<storage>
  <account name="models" url="{_xml(secrets["xmlacct"])}" />
  <note>read-only</note>
</storage>
""")
    (work / "assets/config.json").write_text(
        json.dumps({"name": "fixture", "storage": {"url": secrets["assetacct"]}}, indent=2))
    (work / "smali/com/example/keyscope/BuildConfig.smali").write_text(f"""\
.class public final Lcom/example/keyscope/BuildConfig;
.super Ljava/lang/Object;
.field public static final STORAGE_KEY:Ljava/lang/String; = "{secrets["dexacct"]}"
""")
    (work / "storage.c").write_text(
        f'__attribute__((used)) const char keyscope_storage[] = "{secrets["libacct"]}";\n'
        "int keyscope_version(void) { return 1; }\n")
    _run(work, "gcc", "-shared", "-fPIC", "-O0", "-o", "lib/x86_64/libstorage.so", "storage.c")
    _run(work, "aapt", "package", "-f", "-M", "AndroidManifest.xml", "-S", "res", "-A", "assets",
         "-I", str(FRAMEWORK), "-F", "unsigned.apk")
    _run(work, "smali", "assemble", "-o", "classes.dex", "smali")
    _run(work, "aapt", "add", "unsigned.apk", "classes.dex", "lib/x86_64/libstorage.so")
    _run(work, "zipalign", "-f", "-p", "4", "unsigned.apk", "aligned.apk")
    _run(work, "keytool", "-genkeypair", "-keystore", "debug.jks", "-storepass", "android",
         "-keypass", "android", "-alias", "debug", "-keyalg", "RSA", "-keysize", "2048",
         "-validity", "10000", "-dname", "CN=fixture", "-noprompt")
    _run(work, "apksigner", "sign", "--ks", "debug.jks", "--ks-pass", "pass:android",
         "--out", "app.apk", "aligned.apk")
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in _run(
        work, "apksigner", "verify", "--verbose", "app.apk")
    # the tools agree the secrets are where this test says they are
    assert secrets["dexacct"] in _run(work, "dexdump", "-f", "-d", "classes.dex")
    resources = _run(work, "aapt", "dump", "--values", "resources", "app.apk")
    assert "string/storage_url" in resources and "resacct" in resources
    return App(work / "app.apk", secrets)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    return build_apk(tmp_path_factory.mktemp("apk"))


@pytest.fixture(scope="session")
def members(app: App) -> dict[str, bytes]:
    with zipfile.ZipFile(app.apk) as z:
        return {name: z.read(name) for name in z.namelist()}


@pytest.fixture(scope="session")
def result(app: App) -> ScanResult:
    return scan([app.apk], ScanOptions(jobs=1, now=NOW))


def _found(result: ScanResult) -> dict[str, list[tuple[tuple[str, ...], int, int, str]]]:
    """account → every location of its finding: (origin, line, column, snippet)."""
    out: dict[str, list[tuple[tuple[str, ...], int, int, str]]] = {}
    for finding in result.findings:
        account = next(a for a in ACCOUNTS if a in finding.locations[0].snippet)
        out[account] = [(loc.origin, loc.line, loc.column, loc.snippet)
                        for loc in finding.locations]
    return out


def test_the_android_expanders_are_registered() -> None:
    kinds = {type(e) for e in registry.expanders()}
    assert {DexExpander, AxmlExpander, ArscExpander} <= kinds


def test_claimed_by_content_not_by_name(members: dict[str, bytes]) -> None:
    for name, expander in EXPANDERS.items():
        assert expander.claims(Blob("x.bin", members[name]))  # any name
        assert not expander.claims(Blob(name, b"<?xml version='1.0'?>\n" + members[name]))
    ours = (DexExpander, AxmlExpander, ArscExpander)
    others = [e for e in registry.expanders() if not isinstance(e, ours)]
    for name in EXPANDERS:  # no other expander claims them first
        assert not any(e.claims(Blob(name, members[name])) for e in others), name


def test_every_secret_of_the_apk_is_found_with_its_member_path(
    app: App, result: ScanResult
) -> None:
    found = _found(result)
    assert set(found) == set(app.secrets)
    [(origin, line, column, _)] = found["resacct"]
    assert (origin, line, column) == (("resources.arsc", "string/storage_url"), 1, 1)
    [(origin, line, column, _)] = found["fracct"]  # its French value: line 2
    assert (origin, line, column) == (("resources.arsc", "string/storage_url"), 2, 1)
    [(origin, line, column, _)] = found["arrayacct"]
    assert (origin, line, column) == (("resources.arsc", "array/endpoints"), 2, 1)
    [(origin, line, column, _)] = found["dexacct"]
    assert (origin, line, column) == (("classes.dex", "strings"), 1, 1)  # string_ids[0]
    [(origin, _, column, snippet)] = found["manifestacct"]
    assert origin == ("AndroidManifest.xml", "decoded")
    assert snippet.lstrip().startswith('android:value="DefaultEndpointsProtocol=https;')
    [(origin, _, _, snippet)] = found["xmlacct"]
    assert origin == ("res/xml/storage.xml", "decoded")
    assert snippet.lstrip().startswith('url="https://xmlacct.blob.core.windows.net/')
    [(origin, line, column, _)] = found["assetacct"]
    assert (origin, line) == (("assets/config.json",), 4)
    [(origin, _, _, _)] = found["libacct"]
    assert origin == ("lib/x86_64/libstorage.so",)
    assert not result.skipped


def test_without_the_decoders_the_places_are_not_named(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the decoders add: raw bytes already hold the secrets (the arsc pool in
    UTF-8, the manifest's in UTF-16, the DEX's after a length prefix), but a finding
    then says ``resources.arsc:1:NNN`` or ``AndroidManifest.xml (utf-16)`` and one
    secret in two configurations of a resource is one location, not two."""
    decoders = (DexExpander, AxmlExpander, ArscExpander)
    monkeypatch.setattr(registry, "EXPANDERS",
                        [e for e in registry.expanders() if not isinstance(e, decoders)])
    found = _found(scan([app.apk], ScanOptions(jobs=1, now=NOW)))
    origins = {account: [where[0] for where in places] for account, places in found.items()}
    assert origins == {
        "resacct": [("resources.arsc",)], "fracct": [("resources.arsc",)],
        "arrayacct": [("resources.arsc",)], "dexacct": [("classes.dex",)],
        "manifestacct": [("AndroidManifest.xml", "utf-16")],
        "xmlacct": [("res/xml/storage.xml",)], "assetacct": [("assets/config.json",)],
        "libacct": [("lib/x86_64/libstorage.so",)],
    }


def test_decoded_manifest_is_xml_with_one_attribute_per_line(members: dict[str, bytes]) -> None:
    [decoded] = _expand(AxmlExpander(), "AndroidManifest.xml", members["AndroidManifest.xml"])
    assert isinstance(decoded, Blob) and decoded.origin == ("AndroidManifest.xml", "decoded")
    text = decoded.data.decode()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<manifest\n')
    assert '  xmlns:android="http://schemas.android.com/apk/res/android"\n' in text
    assert '    <meta-data\n      android:name="storage.url"\n' in text
    assert '      android:value="@0x7f' in text  # a reference into resources.arsc
    assert "&amp;" not in text and text.rstrip().endswith("</manifest>")


def test_resources_are_members_named_by_type_and_key(members: dict[str, bytes]) -> None:
    decoded = _expand(ArscExpander(), "resources.arsc", members["resources.arsc"])
    names = {m.origin[-1]: m.data for m in decoded if isinstance(m, Blob)}
    assert names["string/app_name"] == b"Fixture"
    assert names["string/storage_url"].startswith(b"https://resacct.blob.core.windows.net/")
    assert names["xml/storage"] == b"res/xml/storage.xml"
    assert not [m for m in decoded if isinstance(m, Skipped)]


def test_dex_strings_are_one_per_line(members: dict[str, bytes]) -> None:
    [strings] = _expand(DexExpander(), "classes.dex", members["classes.dex"])
    assert isinstance(strings, Blob)
    lines = strings.data.decode().split("\n")
    assert lines[0].startswith("DefaultEndpointsProtocol=https;AccountName=dexacct;")
    assert "Lcom/example/keyscope/BuildConfig;" in lines and "STORAGE_KEY" in lines


@pytest.mark.parametrize(("api", "version"), [(26, b"038"), (28, b"039")])
def test_newer_dex_versions(app: App, api: int, version: bytes) -> None:
    work = app.apk.parent
    _run(work, "smali", "assemble", "--api", str(api), "-o", f"classes{api}.dex", "smali")
    data = (work / f"classes{api}.dex").read_bytes()
    assert data[4:7] == version
    [strings] = _expand(DexExpander(), "classes2.dex", data)
    assert isinstance(strings, Blob) and app.secrets["dexacct"].encode() in strings.data


def test_mutf8() -> None:
    assert mutf8(b"plain") == "plain"
    assert mutf8(b"a\xc0\x80b") == "a\0b"
    assert mutf8("é€".encode()) == "é€"
    # U+1F600 as two encoded surrogates (CESU-8), as DEX writes it
    assert mutf8(b"\xed\xa0\xbd\xed\xb8\x80") == "\U0001f600"
    assert mutf8(b"\xff\xfe") == "\ufffd\ufffd"


def test_every_format_carries_the_member_path(
    app: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(app.apk.parent)
    argv = ["scan", "-q", "-j", "1", "--now", "2026-11-26T12:00:00Z", "--fail-on", "never",
            "app.apk"]
    main(argv)
    text = capsys.readouterr().out
    assert "app.apk!/resources.arsc!/string/storage_url:1:1" in text
    assert "app.apk!/classes.dex!/strings:1:1" in text
    assert "app.apk!/AndroidManifest.xml!/decoded:" in text
    assert "app.apk!/lib/x86_64/libstorage.so:" in text
    assert not any(secret in text for secret in app.secrets.values())  # redacted

    main([*argv, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SCAN_SCHEMA.read_text()))
    origins = sorted(loc["origin"] for f in doc["findings"] for loc in f["locations"])
    assert origins == sorted([
        ["resources.arsc", "string/storage_url"], ["resources.arsc", "string/storage_url"],
        ["resources.arsc", "array/endpoints"], ["classes.dex", "strings"],
        ["AndroidManifest.xml", "decoded"], ["res/xml/storage.xml", "decoded"],
        ["assets/config.json"], ["lib/x86_64/libstorage.so"],
    ])

    main([*argv, "--format", "jsonl"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    jsonl_origins = sorted(r["location"]["origin"] for r in records if "location" in r)
    assert jsonl_origins == origins

    main([*argv, "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    run = sarif["runs"][0]
    artifacts = run["artifacts"]
    assert artifacts[0]["location"]["uri"] == "app.apk"
    for r in run["results"]:
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app.apk"
    inside = sorted(r["message"]["text"].rsplit("(found inside: ", 1)[1] for r in run["results"])
    assert "resources.arsc > string/storage_url)" in inside
    assert "classes.dex > strings)" in inside
    uris = {a["location"]["uri"]: a.get("parentIndex") for a in artifacts}
    for outer, inner in (("resources.arsc", "string/storage_url"), ("classes.dex", "strings")):
        # the member nested in the APK, the decoded member nested in it
        assert uris[outer] == 0 and artifacts[uris[inner]]["location"]["uri"] == outer
    assert all(secret not in json.dumps(sarif) for secret in app.secrets.values())


def _proto(field: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    size, n = b"", len(payload)
    while True:
        size += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return bytes([field << 3 | 2]) + size + payload


def test_an_app_bundle_is_read_by_module_and_member(
    app: App, members: dict[str, bytes], tmp_path: Path
) -> None:
    """An Android App Bundle (.aab): a zip whose modules hold ``dex/``, ``assets/``,
    ``lib/`` and a manifest in aapt2's protobuf XML (bundletool and aapt2 are not in
    the registries this project installs from, so the bundle is assembled here around
    the real DEX smali made, the gcc-built library and the assets). The DEX is read by
    its string table, the protobuf manifest's strings as the bytes they are stored as."""
    manifest_secret = _connection("aabmanifest")
    attribute = (_proto(1, b"http://schemas.android.com/apk/res/android") + _proto(2, b"value")
                 + _proto(3, manifest_secret.encode()))  # fmt: skip
    meta = _proto(1, _proto(3, b"meta-data") + _proto(4, attribute))
    manifest = _proto(1, _proto(3, b"manifest") + _proto(5, meta))
    bundle = tmp_path / "app.aab"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("BundleConfig.pb", _proto(1, _proto(1, b"1.15.6")))
        z.writestr("base/manifest/AndroidManifest.xml", manifest)
        z.writestr("base/dex/classes.dex", members["classes.dex"])
        z.writestr("base/assets/config.json", members["assets/config.json"])
        z.writestr("base/lib/x86_64/libstorage.so", members["lib/x86_64/libstorage.so"])
    result = scan([bundle], ScanOptions(jobs=1, now=NOW))
    places = {}
    for finding in result.findings:
        for loc in finding.locations:
            account = next(a for a in (*ACCOUNTS, "aabmanifest") if a in loc.snippet)
            places[account] = (loc.path, loc.origin, loc.line)
    assert places["dexacct"] == (str(bundle), ("base/dex/classes.dex", "strings"), 1)
    assert places["assetacct"][1:] == (("base/assets/config.json",), 4)
    assert places["libacct"][1] == ("base/lib/x86_64/libstorage.so",)
    assert places["aabmanifest"][1] == ("base/manifest/AndroidManifest.xml",)
    assert set(places) == {"dexacct", "assetacct", "libacct", "aabmanifest"}
    assert not result.skipped


# --- hostile bytes ------------------------------------------------------------------

EXPANDERS: dict[str, Expander] = {
    "classes.dex": DexExpander(), "AndroidManifest.xml": AxmlExpander(),
    "res/xml/storage.xml": AxmlExpander(), "resources.arsc": ArscExpander(),
}


def _expand(expander: Expander, name: str, data: bytes) -> list[Blob | Skipped]:
    blob = Blob("app.apk", data, origin=(name,))
    return list(expander.expand(blob, Budget(UnpackLimits(), len(data))))


def _checked(expander: Expander, name: str, data: bytes) -> list[Blob | Skipped]:
    """Expanded without an exception, members within the growth cap."""
    out = _expand(expander, name, data)
    assert all(isinstance(m, (Blob, Skipped)) for m in out)
    assert sum(len(m.data) for m in out if isinstance(m, Blob)) <= 64 * len(data) + 65536 + 4096
    return out


@st.composite
def damaged(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` after one to six edits: bit flips, 32-bit words overwritten (offsets
    and counts), cuts, deletions, insertions."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        if len(data) < 8:
            break
        i = draw(st.integers(0, len(data) - 4))
        op = draw(st.sampled_from(("flip", "word", "cut", "del", "ins")))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "word":
            word = draw(st.sampled_from((0, 1, 0x7F, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                         len(data), len(data) - 1)))
            data[i : i + 4] = struct.pack("<I", word)
        elif op == "cut":
            del data[i:]
        elif op == "del":
            del data[i : i + draw(st.integers(1, 32))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


# small files, fast parsers: four times the model parsers' examples (KEYSCOPE_FUZZ_EXAMPLES)
FUZZ = settings(max_examples=4 * EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", sorted(EXPANDERS))
def test_damaged_bytes_never_raise(members: dict[str, bytes], name: str) -> None:
    @FUZZ
    @given(data=damaged(members[name]))
    def check(data: bytes) -> None:
        with no_hang():
            _checked(EXPANDERS[name], name, data)

    check()


@pytest.mark.parametrize("name", sorted(EXPANDERS))
def test_every_truncation_is_skipped_or_read(members: dict[str, bytes], name: str) -> None:
    data = members[name]
    for size in range(len(data)):
        out = _checked(EXPANDERS[name], name, data[:size])
        if size < len(data) // 2:  # the pool or the string table is cut: said so
            assert any(isinstance(m, Skipped) for m in out), size


def test_hostile_records_are_capped(members: dict[str, bytes]) -> None:
    """Records that all point at one large string (a decompression bomb of sorts),
    and counts far larger than the file: a Skipped entry with the reason, quickly."""
    big = b"A" * 60_000
    # a DEX whose 100 000 string_ids all name one 60 KB string
    count = 100_000
    header = bytearray(members["classes.dex"][:0x70])
    string_off = 0x70 + 4 * count
    struct.pack_into("<II", header, 0x38, count, 0x70)
    dex = bytes(header) + struct.pack("<I", string_off) * count + b"\x80\x80\x04" + big + b"\0"
    [skipped] = [m for m in _checked(DexExpander(), "classes.dex", dex)
                 if isinstance(m, Skipped)]
    assert "decodes to more than" in skipped.reason and skipped.path == "app.apk!/classes.dex"
    # string_ids past the end of the file
    struct.pack_into("<II", header, 0x38, 0xFFFFFFF0, 0x70)
    [skipped] = _checked(DexExpander(), "classes.dex", bytes(header))
    assert isinstance(skipped, Skipped) and "run past the end" in skipped.reason


def _chunk(kind: int, header: bytes, body: bytes) -> bytes:
    """A ``ResChunk_header`` (type, header size, size), the rest of its header, its body."""
    return struct.pack("<HHI", kind, 8 + len(header), 8 + len(header) + len(body)) + header + body


def _pool(strings: list[str]) -> bytes:
    """A UTF-8 ``ResStringPool`` (lengths of up to 0x7FFF bytes)."""
    data, offsets = b"", []
    for text in strings:
        raw = text.encode()
        offsets.append(len(data))
        n16 = struct.pack(">H", 0x8000 | len(text)) if len(text) > 0x7F else bytes([len(text)])
        n8 = struct.pack(">H", 0x8000 | len(raw)) if len(raw) > 0x7F else bytes([len(raw)])
        data += n16 + n8 + raw + b"\0"
    start = 28 + 4 * len(strings)
    header = struct.pack("<IIIII", len(strings), 0, 0x100, start, 0)
    return _chunk(0x0001, header, struct.pack(f"<{len(strings)}I", *offsets) + data)


def test_one_large_string_named_many_times_is_capped() -> None:
    """Binary XML whose 3000 attributes, and a resource table whose 3000 entries, all
    name one 20 KB string: decoding stops at the growth cap with a Skipped entry."""
    big = "A" * 20_000
    attrs = b"".join(struct.pack("<IIIHBBI", 0xFFFFFFFF, 1, 0, 8, 0, 3, 0) for _ in range(3000))
    element = _chunk(0x0102, struct.pack("<II", 1, 0xFFFFFFFF),
                     struct.pack("<IIHHHHHH", 0xFFFFFFFF, 1, 20, 20, 3000, 0, 0, 0) + attrs)
    body = _pool([big, "tag"]) + element
    xml = _chunk(0x0003, b"", body)
    out = _checked(AxmlExpander(), "AndroidManifest.xml", xml)
    assert isinstance(out[-1], Skipped) and "decodes to more than" in out[-1].reason

    keys = [f"k{i}" for i in range(3000)]
    entries = b"".join(struct.pack("<HHIHBBI", 8, 0, i, 8, 0, 3, 0) for i in range(3000))
    offsets = struct.pack("<3000I", *range(0, 16 * 3000, 16))
    config = struct.pack("<I", 64) + bytes(60)
    type_header = struct.pack("<BBHII", 1, 0, 0, 3000, 8 + 12 + 64 + len(offsets)) + config
    type_chunk = _chunk(0x0201, type_header, offsets + entries)
    type_pool, key_pool = _pool(["string"]), _pool(keys)
    package_header = struct.pack("<I", 0x7F) + bytes(256) + struct.pack(
        "<IIIII", 288, 1, 288 + len(type_pool), len(keys), 0)
    package = _chunk(0x0200, package_header, type_pool + key_pool + type_chunk)
    table = _chunk(0x0002, struct.pack("<I", 1), _pool([big]) + package)
    out = _checked(ArscExpander(), "resources.arsc", table)
    assert isinstance(out[-1], Skipped) and "decodes to more than" in out[-1].reason
    assert [m.origin[-1] for m in out if isinstance(m, Blob)][:2] == ["string/k0", "string/k1"]


def test_decoding_stops_at_the_budget_seconds(members: dict[str, bytes]) -> None:
    count = 10_000
    header = bytearray(members["classes.dex"][:0x70])
    struct.pack_into("<II", header, 0x38, count, 0x70)
    dex = bytes(header) + struct.pack("<I", 0x70 + 4 * count) * count + b"\x01a\0"
    spent = Budget(UnpackLimits(seconds=0.0), len(dex))
    strings, problem = dex_strings(dex, Output(len(dex), spent))
    assert len(strings) == 4095
    assert problem == "DEX string table: took more than 0 s to decode: the rest not decoded"
    blob = Blob("app.apk", dex, origin=("classes.dex",))
    [strings] = list(DexExpander().expand(blob, Budget(UnpackLimits(), len(dex))))
    assert isinstance(strings, Blob) and strings.data == b"\n".join([b"a"] * count)


def test_a_broken_element_keeps_the_pool_strings(app: App, members: dict[str, bytes]) -> None:
    """The manifest's chunk stream broken after its first element: what was decoded
    stays, the string pool follows whole (the connection string in it is still
    scanned), and a Skipped entry says why."""
    data = members["AndroidManifest.xml"]
    pos = 8
    while struct.unpack_from("<H", data, pos)[0] != 0x0102:  # to the first start tag
        pos += struct.unpack_from("<I", data, pos + 4)[0]
    pos += struct.unpack_from("<I", data, pos + 4)[0]
    broken = data[:pos] + struct.pack("<HHI", 0x0102, 16, 4) + data[pos + 8 :]
    out = _checked(AxmlExpander(), "AndroidManifest.xml", broken)
    names = [m.origin[-1] if isinstance(m, Blob) else m.reason for m in out]
    assert names[:2] == ["decoded", "strings"] and "bad size" in names[2]
    decoded, strings = (m.data for m in out[:2] if isinstance(m, Blob))
    assert decoded.endswith(b'  platformBuildVersionName="10.0.0">\n')  # <manifest> only
    assert app.secrets["manifestacct"].encode() in strings
