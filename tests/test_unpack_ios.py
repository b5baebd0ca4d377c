"""iOS apps: an IPA (``Payload/Demo.app``) zipped by the real ``zip`` tool, holding a
binary ``Info.plist`` and ``.strings`` written by ``plistlib``, an XML
``GoogleService-Info.plist``, a UTF-16 ``Localizable.strings`` as Xcode writes it, an
executable compiled by ``clang`` and linked by ``ld64.lld`` for iOS, and a universal
framework binary made by ``llvm-lipo``. Mach-O files are read by section
(``unpack/macho.py``); every output format names the member."""

from __future__ import annotations

import json
import plistlib
import shutil
import struct
import subprocess
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from keyscope.unpack import registry
from keyscope.unpack.interface import Budget, UnpackLimits
from keyscope.unpack.macho import MachOExpander, fat_slices, read_thin
from tests.sdk import NOW, incident_url, new_key
from tests.test_fuzz_parsers import FUZZ, mutated, no_hang

SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"
SCAN_SCHEMA = Path(__file__).resolve().parents[1] / "src" / "keyscope" / "schemas" / "scan-v1.json"
CLANG = shutil.which("clang")
LIPO = shutil.which("llvm-lipo") or shutil.which("llvm-lipo-14")
LLD = shutil.which("ld64.lld") or shutil.which("ld64.lld-14")
# scripts/os-packages.txt installs clang, lld and llvm-14 in CI: these never skip there
needs_clang = pytest.mark.skipif(
    not (CLANG and LIPO and LLD),
    reason="needs clang, ld64.lld (lld) and llvm-lipo (llvm-14) to build Mach-O files",
)
IOS = ["-target", "arm64-apple-ios14"]
SIMULATOR = ["-target", "x86_64-apple-ios14-simulator"]
LINK = ["-fuse-ld=lld", "-nostdlib", "-Wl,-undefined,dynamic_lookup"]


def _scan(path: Path, **options: object) -> ScanResult:
    return scan([path], ScanOptions(jobs=1, now=NOW, **options))  # type: ignore[arg-type]


def _where(result: ScanResult) -> list[tuple[tuple[str, ...], int]]:
    return sorted((loc.origin, loc.line) for f in result.findings for loc in f.locations)


def _c_source(url: str, wide: str | None = None) -> str:
    """A C file with ``url`` as a C string and, optionally, ``wide`` as a constant
    CFString with a non-ASCII character (clang puts those in ``__ustring``, UTF-16)."""
    src = f'const char *banner = "keyscope fixture";\nconst char *storage = "{url}";\n'
    if wide is not None:
        src += f'const void *label = __builtin___CFStringMakeConstantString("Clé {wide}");\n'
    return src


def _compile(tmp_path: Path, name: str, source: str, *args: str) -> Path:
    c = tmp_path / f"{name}.c"
    c.write_text(source)
    out = tmp_path / name
    subprocess.run([CLANG or "clang", *args, str(c), "-o", str(out)], check=True,
                   capture_output=True)  # fmt: skip
    return out


def _lipo(tmp_path: Path, name: str, *slices: Path) -> Path:
    out = tmp_path / name
    subprocess.run([LIPO or "llvm-lipo", "-create", *map(str, slices), "-output", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    return out


def test_the_macho_expander_is_registered() -> None:
    assert any(isinstance(e, MachOExpander) for e in registry.expanders())


@needs_clang
@pytest.mark.parametrize("target", ["arm64-apple-ios14", "armv7-apple-ios9"])
def test_an_object_file_is_read_by_section(tmp_path: Path, target: str) -> None:
    """C strings one per line (the URL is the second string), UTF-16 decoded; 64 and
    32-bit Mach-O."""
    url, wide = incident_url("machoacct", new_key()), incident_url("machowide", new_key())
    obj = _compile(tmp_path, "x.o", _c_source(url, wide), "-target", target, "-c")
    assert obj.read_bytes()[:4] == (b"\xcf" if "64" in target else b"\xce") + b"\xfa\xed\xfe"
    assert _where(_scan(obj)) == [(("__TEXT,__cstring",), 2), (("__TEXT,__ustring",), 1)]
    [ustring] = [f for f in _scan(obj).findings if f.locations[0].origin[-1] == "__TEXT,__ustring"]
    assert ustring.locations[0].snippet.startswith("Clé https://machowide.")


@needs_clang
def test_a_universal_binary_is_read_by_slice(tmp_path: Path) -> None:
    url = incident_url("fatacct", new_key())
    source = _c_source(url)
    arm = _compile(tmp_path, "arm64", source, *IOS, *LINK, "-dynamiclib")
    sim = _compile(tmp_path, "x86", source, *SIMULATOR, *LINK, "-dynamiclib")
    fat = _lipo(tmp_path, "Kit", arm, sim)
    assert [name for name, _, _ in fat_slices(fat.read_bytes()) or []] == ["x86_64", "arm64"]
    [finding] = _scan(fat).findings
    assert sorted(loc.origin for loc in finding.locations) == [
        ("arm64", "__TEXT,__cstring"), ("x86_64", "__TEXT,__cstring")
    ]


@needs_clang
def test_a_fairplay_encrypted_executable_is_a_skipped_entry(tmp_path: Path) -> None:
    """ld64.lld writes LC_ENCRYPTION_INFO_64 with cryptid 0 into an iOS executable; the
    App Store's FairPlay sets it to 1 and encrypts the range (here only the flag)."""
    url = incident_url("appacct", new_key())
    exe = _compile(tmp_path, "Demo", _c_source(url) + "int main(void) { return 0; }\n",
                   *IOS, *LINK, "-Wl,-e,_main")  # fmt: skip
    data = exe.read_bytes()
    thin = read_thin(data)
    assert thin.encrypted is not None and thin.encrypted[2] == 0 and thin.problem is None
    assert not _scan(exe).skipped
    command = data.index(struct.pack("<II", 0x2C, 24))  # LC_ENCRYPTION_INFO_64
    exe.write_bytes(data[: command + 16] + struct.pack("<I", 1) + data[command + 20 :])
    result = _scan(exe)
    [skipped] = result.skipped
    assert skipped.path == str(exe)
    assert "FairPlay-encrypted binary (cryptid 1)" in skipped.reason
    assert _where(result) == [(("__TEXT,__cstring",), 2)]  # what is readable is still read


@needs_clang
def test_damaged_load_commands_keep_every_byte_scanned(tmp_path: Path) -> None:
    """A segment declaring more sections than its command holds: a skipped entry, and
    the bytes are scanned as ``<other>``; load commands past the file: not claimed."""
    url = incident_url("damaged", new_key())
    obj = _compile(tmp_path, "x.o", _c_source(url), *IOS, "-c")
    data = obj.read_bytes()
    segment = 32  # the object file's one LC_SEGMENT_64, right after the header
    assert struct.unpack_from("<I", data, segment)[0] == 0x19
    broken = data[: segment + 64] + struct.pack("<I", 1000) + data[segment + 68 :]
    obj.write_bytes(broken)
    result = _scan(obj)
    [skipped] = result.skipped
    assert "declares 1000 sections" in skipped.reason
    assert [origin for origin, _ in _where(result)] == [("<other>",)]
    obj.write_bytes(data[:20] + struct.pack("<I", len(data)) + data[24:])  # sizeofcmds
    assert not MachOExpander().claims(Blob(str(obj), obj.read_bytes()))
    assert [origin for origin, _ in _where(_scan(obj))] == [()]  # raw bytes, as before


def test_a_java_class_file_is_not_a_universal_binary() -> None:
    """Both start with CAFEBABE; a class file's version (here 61, Java 17) is read as
    the slice count."""
    header = bytes.fromhex("cafebabe0000003d") + bytes(64)
    assert not MachOExpander().claims(Blob("A.class", header))


# -- a whole IPA --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ipa(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """``Demo.ipa`` and the secret planted in each of its files."""
    if not (CLANG and LIPO and LLD and shutil.which("zip")):
        pytest.skip("needs zip, clang, ld64.lld (lld) and llvm-lipo (llvm-14)")
    tmp = tmp_path_factory.mktemp("ipa")
    app = tmp / "Payload" / "Demo.app"
    (app / "en.lproj").mkdir(parents=True)
    (app / "de.lproj").mkdir()
    (app / "Frameworks" / "Kit.framework").mkdir(parents=True)
    secrets = {name: incident_url(account, new_key()) for name, account in [
        ("info", "ipainfo"), ("strings", "ipastrings"), ("bstrings", "ipabstrings"),
        ("exe", "ipaexe"), ("kit", "ipakit")]}  # fmt: skip
    conn = (f"DefaultEndpointsProtocol=https;AccountName=ipagoogle;AccountKey={new_key()};"
            "EndpointSuffix=core.windows.net")  # fmt: skip
    secrets["google"] = conn
    info = {"CFBundleExecutable": "Demo", "CFBundleIdentifier": "com.example.demo",
            "Backend": {"StorageURL": secrets["info"]}}  # fmt: skip
    (app / "Info.plist").write_bytes(plistlib.dumps(info, fmt=plistlib.FMT_BINARY))
    google = {"API_KEY": "AIzaSyFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE", "PROJECT_ID": "demo",
              "STORAGE_CONNECTION": conn}  # fmt: skip
    (app / "GoogleService-Info.plist").write_bytes(plistlib.dumps(google))
    strings = f'/* Storage */\n"storage_url" = "{secrets["strings"]}";\n'
    (app / "en.lproj" / "Localizable.strings").write_bytes(strings.encode("utf-16"))
    compiled = plistlib.dumps({"storage_url": secrets["bstrings"]}, fmt=plistlib.FMT_BINARY)
    (app / "de.lproj" / "Localizable.strings").write_bytes(compiled)
    build = tmp / "build"
    build.mkdir()
    exe = _compile(build, "Demo", _c_source(secrets["exe"]) + "int main(void) { return 0; }\n",
                   *IOS, *LINK, "-Wl,-e,_main")  # fmt: skip
    shutil.copy(exe, app / "Demo")
    kit = [_compile(build, f"Kit-{n}", _c_source(secrets["kit"]), *target, *LINK, "-dynamiclib")
           for n, target in (("arm64", IOS), ("x86", SIMULATOR))]  # fmt: skip
    _lipo(app / "Frameworks" / "Kit.framework", "Kit", *kit)
    subprocess.run(["zip", "-q", "-r", str(tmp / "Demo.ipa"), "Payload"], cwd=tmp, check=True)
    return tmp / "Demo.ipa", secrets


APP = "Payload/Demo.app/"
EXPECTED = [
    ((APP + "Demo", "__TEXT,__cstring"), 2),
    ((APP + "Frameworks/Kit.framework/Kit", "arm64", "__TEXT,__cstring"), 2),
    ((APP + "Frameworks/Kit.framework/Kit", "x86_64", "__TEXT,__cstring"), 2),
    ((APP + "GoogleService-Info.plist", "<plist>"), 3),
    ((APP + "Info.plist", "<plist>"), 1),
    ((APP + "de.lproj/Localizable.strings", "<plist>"), 1),
    ((APP + "en.lproj/Localizable.strings",), 2),
]


def test_every_secret_of_an_ipa_is_found_with_its_member(ipa: tuple[Path, dict[str, str]]) -> None:
    path, secrets = ipa
    result = _scan(path)
    assert _where(result) == EXPECTED
    assert not result.skipped
    snippets = {loc.origin[0]: loc.snippet for f in result.findings for loc in f.locations}
    assert snippets[APP + "Info.plist"].startswith("Backend/StorageURL = https://ipainfo.")
    assert snippets[APP + "GoogleService-Info.plist"].startswith(
        "STORAGE_CONNECTION = DefaultEndpointsProtocol=https;AccountName=ipagoogle;")
    assert snippets[APP + "en.lproj/Localizable.strings"].startswith('"storage_url" = "https:')
    assert len(result.findings) == len(secrets)


def test_every_format_names_the_member(
    ipa: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = ipa
    monkeypatch.chdir(path.parent)
    argv = ["scan", "-q", "-j", "1", "--now", "2026-11-26T12:00:00Z", "--all-locations",
            "--fail-on", "never", "Demo.ipa"]  # fmt: skip
    main(argv)
    text = capsys.readouterr().out
    assert f"Demo.ipa!/{APP}Info.plist!/<plist>:1:" in text
    assert f"Demo.ipa!/{APP}Frameworks/Kit.framework/Kit!/arm64!/__TEXT,__cstring:2:" in text
    assert f"Demo.ipa!/{APP}en.lproj/Localizable.strings:2:" in text
    main([*argv, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SCAN_SCHEMA.read_text()))
    origins = sorted(tuple(loc["origin"]) for f in doc["findings"] for loc in f["locations"])
    assert origins == [origin for origin, _ in EXPECTED]
    main([*argv, "--format", "jsonl"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    streamed = sorted(tuple(r["location"]["origin"]) for r in records if "location" in r)
    assert streamed == [origin for origin, _ in EXPECTED]
    main([*argv, "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    run = sarif["runs"][0]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in run["results"]} == {"Demo.ipa"}  # fmt: skip
    related = sorted(r["relatedLocations"][0]["message"]["text"] for r in run["results"])
    assert related == sorted("inside Demo.ipa!/" + "!/".join(origin) for origin, _ in EXPECTED)
    nested = {a["location"]["uri"] for a in run["artifacts"] if "parentIndex" in a}
    assert APP + "Info.plist" in nested and "%3Cplist%3E" in nested  # a URI: "<plist>"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_strings_files_are_read_as_text(tmp_path: Path, codec: str) -> None:
    """Xcode's ``.strings``: UTF-16 with a byte-order mark, either order. The pipeline
    reads such text as UTF-8 (no expander needed); line and snippet are the text's."""
    url = incident_url("stringsacct", new_key())
    text = f'/* Storage */\n"storage_url" = "{url}";\n'
    path = tmp_path / "Localizable.strings"
    path.write_bytes("\ufeff".encode(codec) + text.encode(codec))
    [finding] = _scan(path).findings
    [loc] = finding.locations
    assert (loc.origin, loc.line, loc.column) == ((), 2, 18)
    assert loc.snippet.startswith('"storage_url" = "https://stringsacct.')


@pytest.fixture(scope="module")
def macho_seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    if not (CLANG and LIPO and LLD):
        pytest.skip("needs clang, ld64.lld (lld) and llvm-lipo (llvm-14)")
    tmp = tmp_path_factory.mktemp("seeds")
    source = _c_source("https://x.example/?sig=abc", "wide") + "int main(void) { return 0; }\n"
    exe = _compile(tmp, "exe", source, *IOS, *LINK, "-Wl,-e,_main")
    sim = _compile(tmp, "sim", source, *SIMULATOR, *LINK, "-Wl,-e,_main")
    return [exe.read_bytes(), _lipo(tmp, "fat", exe, sim).read_bytes()]


@FUZZ
@given(data=st.data())
def test_a_damaged_macho_never_raises(macho_seeds: list[bytes], data: st.DataObject) -> None:
    """A linked iOS executable and a universal file after byte-level edits: claimed or
    not, never an exception, never a hang."""
    raw = data.draw(mutated(data.draw(st.sampled_from(macho_seeds))))
    blob = Blob("Demo", raw)
    expander = MachOExpander()
    with no_hang():
        if expander.claims(blob):
            list(expander.expand(blob, Budget(UnpackLimits(), len(raw))))
