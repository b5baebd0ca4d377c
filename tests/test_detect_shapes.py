"""Credential shapes seen in real public code, each in a real-looking file of its language.

Keys and SAS tokens are minted by the Azure SDK with fresh random keys (tests/sdk.py).
Each test names the shape; the scan must report the credential at its line, with its
account, on both engines, and must not report the look-alikes of other Azure services.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import (
    BlobSasPermissions,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from keyscope.analyze.azure.filters import placeholder_secret
from keyscope.detect.capture import Capturer
from keyscope.detect.engine import Hit, make_engine
from keyscope.detect.guard import USER_WINDOW, check_capture
from keyscope.detect.rules import load_rules
from keyscope.errors import ConfigError
from keyscope.model import Finding
from keyscope.pipeline import BlobResult, BlobScanner
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from tests.sdk import NOW, blob_url, new_key

KEY = "azure-storage-account-key"
SAS = "azure-storage-sas"
CONN = "azure-storage-connection-string"
ENGINES = ("re", "hyperscan")
EXPIRY = NOW + timedelta(days=30)


def _key() -> str:
    while True:  # a random key can hold a placeholder word ("fake"): draw again
        k = new_key()
        if not placeholder_secret(k):
            return k


def _blob_sas(account: str, container: str = "data", blob: str = "train.csv") -> str:
    """An SDK-signed service SAS URL for one blob, its signature free of words."""
    while True:
        query = generate_blob_sas(
            account, container, blob, account_key=_key(),
            permission=BlobSasPermissions(read=True), expiry=EXPIRY,
        )
        if not placeholder_secret(parse_qs(query)["sig"][0]):
            return blob_url(account, container, blob, query)


def _container_sas(account: str, container: str = "models") -> str:
    while True:
        query = generate_container_sas(
            account, container, account_key=_key(),
            permission=ContainerSasPermissions(read=True, list=True), expiry=EXPIRY,
        )
        if not placeholder_secret(parse_qs(query)["sig"][0]):
            return blob_url(account, container, None, query)


def _sig(url: str) -> str:
    return parse_qs(url.split("?", 1)[1])["sig"][0]


def _scan(tmp_path: Path, name: str, text: str, engine: str) -> list[Finding]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    options = ScanOptions(
        jobs=1, now=NOW, engine=engine, cache_dir=tmp_path / "cache", show_secrets=True,
        git=False,
    )
    return scan([path], options).findings


def _seen(findings: list[Finding]) -> list[tuple[str, str | None, str | None, list[int]]]:
    """(rule, kind, account, lines) of each finding."""
    return [
        (
            f.rule_id,
            f.explanation.access.kind,
            f.explanation.access.account,
            [loc.line for loc in f.locations],
        )
        for f in findings
    ]


def _secrets(findings: list[Finding]) -> list[str | None]:
    return [loc.secret for f in findings for loc in f.locations]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- a key on the line after its name --------------------------------------------------------


def test_hadoop_json_key_on_the_line_after_its_name(tmp_path: Path, engine: str) -> None:
    key = _key()
    text = "\n".join([
        "{",
        '  "spark.hadoop.fs.azure.account.auth.type": "SharedKey",',
        '  "spark.hadoop.fs.azure.account.key.contosohadoop.dfs.core.windows.net":',
        f'      "{key}",',
        '  "spark.sql.shuffle.partitions": "200"',
        "}",
    ])
    found = _scan(tmp_path, "conf/spark-defaults.json", text, engine)
    assert _seen(found) == [(KEY, "account-key", "contosohadoop", [4])]
    assert _secrets(found) == [key]


def test_hadoop_core_site_xml_key_in_the_value_element(tmp_path: Path, engine: str) -> None:
    key = _key()
    text = "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<configuration>",
        "  <property>",
        "    <name>fs.defaultFS</name>",
        "    <value>wasbs://logs@contosohdfs.blob.core.windows.net</value>",
        "  </property>",
        "  <property>",
        "    <name>fs.azure.account.key.contosohdfs.blob.core.windows.net</name>",
        f"    <value>{key}</value>",
        "  </property>",
        "</configuration>",
    ])
    found = _scan(tmp_path, "etc/hadoop/core-site.xml", text, engine)
    assert _seen(found) == [(KEY, "account-key", "contosohdfs", [9])]


def test_a_digest_on_the_line_after_its_name_is_not_a_key(tmp_path: Path, engine: str) -> None:
    text = "\n".join([
        "storage_account_name = contosodigest",
        "[checksums]",
        "sha512 =",
        f"  {_key()}",
    ])
    assert _scan(tmp_path, "release.ini", text, engine) == []


# --- the key argument alone on the next line --------------------------------------------------


def test_csharp_key_argument_on_the_next_line(tmp_path: Path, engine: str) -> None:
    key = _key()
    text = "\n".join([
        "using Microsoft.WindowsAzure.Storage;",
        "using Microsoft.WindowsAzure.Storage.Auth;",
        "",
        "public static class Blobs",
        "{",
        "    public static CloudStorageAccount Account() =>",
        "        new CloudStorageAccount(",
        '            new StorageCredentials("contosolegacy",',
        f'                "{key}"),',
        "            useHttps: true);",
        "}",
    ])
    found = _scan(tmp_path, "src/Blobs.cs", text, engine)
    assert _seen(found) == [(KEY, "account-key", "contosolegacy", [9])]


def test_python_shared_key_credential_on_one_line(tmp_path: Path, engine: str) -> None:
    key = _key()
    text = "\n".join([
        "import os",
        "",
        "from azure.storage.blob import BlobServiceClient, StorageSharedKeyCredential",
        "",
        f'credential = StorageSharedKeyCredential("contosoml", "{key}")',
        'client = BlobServiceClient(os.environ["BLOB_ENDPOINT"], credential)',
    ])
    found = _scan(tmp_path, "train.py", text, engine)
    assert _seen(found) == [(KEY, "account-key", "contosoml", [5])]


# --- a second location of a key already found --------------------------------------------------


def test_second_location_of_a_found_key(tmp_path: Path, engine: str) -> None:
    key = _key()
    text = "\n".join([
        "import os",
        "",
        "from azure.storage.blob import BlobServiceClient",
        "",
        "CONNECTION_STRING = (",
        '    "DefaultEndpointsProtocol=https;AccountName=contosotwice;"',
        f'    "AccountKey={key};EndpointSuffix=core.windows.net"',
        ")",
        "",
        "",
        "def client() -> BlobServiceClient:",
        "    return BlobServiceClient.from_connection_string(CONNECTION_STRING)",
        "",
        "",
        "def legacy_client() -> BlobServiceClient:",
        '    url = os.environ["BLOB_URL"]',
        f'    return BlobServiceClient(url, credential="{key}")',
    ])
    found = _scan(tmp_path, "storage.py", text, engine)
    assert _seen(found) == [(CONN, "account-key", "contosotwice", [6, 17])]


# --- a credential split over lines ------------------------------------------------------------


def _at_sig(url: str) -> tuple[str, str]:
    i = url.index("&sig=")
    return url[:i], url[i:]


def test_python_implicit_string_concatenation(tmp_path: Path, engine: str) -> None:
    url = _blob_sas("contosopy", "models", "ckpt.pt")
    head, tail = _at_sig(url)
    text = "\n".join([
        "import urllib.request",
        "",
        "CHECKPOINT_URL = (",
        f'    "{head}"',
        f'    "{tail}"',
        ")",
        "urllib.request.urlretrieve(CHECKPOINT_URL, 'ckpt.pt')",
    ])
    found = _scan(tmp_path, "download.py", text, engine)
    assert _seen(found) == [(SAS, "service-sas", "contosopy", [4])]
    assert _secrets(found) == [_sig(url)]


def test_javascript_concatenation_with_plus(tmp_path: Path, engine: str) -> None:
    url = _blob_sas("contosojs", "assets", "bundle.js")
    head, tail = _at_sig(url)
    text = "\n".join([
        "// fetch the prebuilt bundle",
        f"const bundleUrl = '{head}' +",
        f"  '{tail}';",
        "fetch(bundleUrl).then((r) => r.text()).then(eval);",
    ])
    found = _scan(tmp_path, "web/load.js", text, engine)
    assert _seen(found) == [(SAS, "service-sas", "contosojs", [2])]


def test_csharp_and_java_concatenation(tmp_path: Path, engine: str) -> None:
    cs_url = _container_sas("contosocs")
    cs_head, cs_tail = _at_sig(cs_url)
    cs = "\n".join([
        "public static class Models",
        "{",
        "    public static readonly Uri Container = new Uri(",
        f'        "{cs_head}" +',
        f'        "{cs_tail}");',
        "}",
    ])
    java_url = _blob_sas("contosojava", "jars", "app.jar")
    # split inside the signature this time
    cut = java_url.index("&sig=") + 15
    java = "\n".join([
        "public final class Artifacts {",
        "    static final String APP_JAR =",
        f'        "{java_url[:cut]}"',
        f'        + "{java_url[cut:]}";',
        "}",
    ])
    assert _seen(_scan(tmp_path, "Models.cs", cs, engine)) == [
        (SAS, "service-sas", "contosocs", [4])
    ]
    assert _seen(_scan(tmp_path, "Artifacts.java", java, engine)) == [
        (SAS, "service-sas", "contosojava", [3])
    ]


def test_yaml_folded_and_literal_block_scalars(tmp_path: Path, engine: str) -> None:
    folded = _blob_sas("contosoyaml", "data", "train.csv")
    head, tail = _at_sig(folded)
    literal = _blob_sas("contosoyamlq", "data", "eval.csv")
    query = literal.split("?", 1)[1]
    cut = query.index("sig=") + 20  # inside the signature
    text = "\n".join([
        "dataset:",
        "  train:",
        "    url: >-",
        f"      {head}",
        f"      {tail}",
        "  eval:",
        "    account: contosoyamlq",
        "    endpoint: https://contosoyamlq.blob.core.windows.net/data/eval.csv",
        "    sas: |",
        f"      {query[:cut]}",
        f"      {query[cut:]}",
    ])
    found = _scan(tmp_path, "config/data.yaml", text, engine)
    assert sorted(_seen(found)) == [
        (SAS, "service-sas", "contosoyaml", [4]),
        (SAS, "service-sas", "contosoyamlq", [10]),
    ]
    assert sorted(_secrets(found)) == sorted([_sig(folded), _sig(literal)])


def _with_plus() -> str:
    for _ in range(200):
        url = _blob_sas("contosomail", "models", "ckpt.pt")
        if "%2B" in url.split("sig=")[1][:-6]:
            return url
    raise AssertionError("no signature with a '+' in 200 draws")


def _hard_wrap(url: str, cut: int, width: int = 72) -> list[str]:
    """``url`` broken at ``cut`` and then every ``width`` characters."""
    lines = [url[:cut]]
    rest = url[cut:]
    while rest:
        lines.append(rest[:width])
        rest = rest[width:]
    return lines


def test_email_hard_wrapped_inside_a_percent_escape(tmp_path: Path, engine: str) -> None:
    url = _with_plus()
    cut = url.index("%2B", url.index("sig=")) + 2  # between "%2" and "B"
    body = [
        "From: Dana Lee <dana@contoso.example>",
        "To: ml-team@contoso.example",
        "Subject: checkpoint for the demo",
        "",
        "Hi all,",
        "",
        "the checkpoint is here, the link works for a month:",
        "",
        *_hard_wrap(url, cut),
        "",
        "Thanks,",
        "Dana",
    ]
    quoted = [
        "On Mon, Dec 7, 2026 Sam wrote:",
        "> Where do I get the weights?",
        *[f"> {line}" for line in body[6:]],
    ]
    found = _scan(tmp_path, "mail/demo.eml", "\n".join(body), engine)
    assert _seen(found) == [(SAS, "service-sas", "contosomail", [9])]
    assert _secrets(found) == [_sig(url)]
    found = _scan(tmp_path, "mail/reply.eml", "\n".join(quoted), engine)
    assert _seen(found) == [(SAS, "service-sas", "contosomail", [5])]


def test_terminal_wrapped_at_80_columns(tmp_path: Path, engine: str) -> None:
    url = _blob_sas("contosoterm", "logs", "2026/12/07/run-17.log")
    lines = [url[i : i + 80] for i in range(0, len(url), 80)]
    text = "\n".join([
        "$ az storage blob generate-sas --account-name contosoterm -c logs \\",
        "    -n 2026/12/07/run-17.log --permissions r --full-uri -o tsv",
        *lines,
        "$ exit",
    ])
    found = _scan(tmp_path, "session.log", text, engine)
    assert _seen(found) == [(SAS, "service-sas", "contosoterm", [3])]
    assert _secrets(found) == [_sig(url)]


@pytest.mark.parametrize("where", ["after sig=", "inside sig", "before ?", "after sv="])
def test_a_wrap_anywhere_in_the_url(tmp_path: Path, engine: str, where: str) -> None:
    url = _blob_sas("contosowrap", "models", "ckpt.pt")
    cut = {
        "after sig=": url.index("sig=") + 4,
        "inside sig": url.index("sig=") + 2,
        "before ?": url.index("?"),
        "after sv=": url.index("sv=") + 3,
    }[where]
    text = "\n".join(["Download:", url[:cut], url[cut:], "", "-- ", "Dana"])
    found = _scan(tmp_path, "note.txt", text, engine)
    assert _seen(found) == [(SAS, "service-sas", "contosowrap", [2])]


# --- look-alikes of other Azure services --------------------------------------------------


def test_cosmos_db_string_a_line_below_a_storage_string(tmp_path: Path, engine: str) -> None:
    storage, cosmos = _key(), _key()
    text = "\n".join([
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=contosodata;"
        f"AccountKey={storage};EndpointSuffix=core.windows.net",
        "COSMOS_CONNECTION_STRING=AccountEndpoint=https://contosodata.documents.azure.com:443/;"
        f"AccountKey={cosmos};",
    ])
    found = _scan(tmp_path, ".env", text, engine)
    assert _seen(found) == [(CONN, "account-key", "contosodata", [1])]
    assert _secrets(found) == [storage]
    # the same two strings as bare lines (a notes file, a YAML literal block)
    bare = "\n".join(line.split("=", 1)[1] for line in text.splitlines())
    found = _scan(tmp_path, "notes.txt", bare, engine)
    assert _seen(found) == [(CONN, "account-key", "contosodata", [1])]
    assert _secrets(found) == [storage]


def test_other_azure_services_next_to_a_storage_account(tmp_path: Path, engine: str) -> None:
    storage = _key()
    k = [_key() for _ in range(12)]
    bus = "Endpoint=sb://contosodata.servicebus.windows.net/;"
    settings = "\n".join([
        "{",
        '  "Storage": {',
        '    "AccountName": "contosodata",',
        f'    "AccountKey": "{storage}"',
        "  },",
        '  "Cosmos": {',
        '    "Endpoint": "https://contosodata.documents.azure.com:443/",',
        f'    "Key": "{k[0]}"',
        "  },",
        '  "CosmosKey": "' + k[1] + '",',
        f'  "ServiceBus": "{bus}SharedAccessKeyName=Root;SharedAccessKey={k[2]}",',
        f'  "EventHub": "{bus}SharedAccessKeyName=send;SharedAccessKey={k[3]};EntityPath=logs",',
        '  "IotHub": "HostName=contosodata.azure-devices.net;SharedAccessKeyName=iothubowner;'
        f'SharedAccessKey={k[4]}",',
        '  "SignalR": "Endpoint=https://contosodata.service.signalr.net;'
        f'AccessKey={k[5]};Version=1.0;",',
        '  "AppConfig": "Endpoint=https://contosodata.azconfig.io;Id=2Xo1-l0-s0:abc;'
        f'Secret={k[6]}",',
        f'  "BatchAccountKey": "{k[7]}",',
        f'  "SearchApiKey": "{k[8]}",',
        f'  "Redis": "contosodata.redis.cache.windows.net:6380,password={k[9]},ssl=True",',
        "}",
    ])
    found = _scan(tmp_path, "appsettings.json", settings, engine)
    assert _seen(found) == [(KEY, "account-key", "contosodata", [4])]
    env = "\n".join([
        "AZURE_STORAGE_ACCOUNT=contosodata",
        f"AZURE_BATCH_ACCOUNT_KEY={k[10]}",
        "AZURE_BATCH_ACCOUNT=contosodata",
        f"REDIS_PASSWORD={k[11]}",
    ])
    assert _scan(tmp_path, "batch.env", env, engine) == []


# --- detector budgets (hostile input) ---------------------------------------------------------


def _cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


@pytest.mark.parametrize("name", ENGINES)
def test_one_megabyte_of_repeated_anchors_scans_in_linear_time(name: str) -> None:
    url = _blob_sas("contosoafter")
    data = b"sig=AAAAAAAA " * 80_000 + url.encode() + b"\n"
    scanner = BlobScanner(make_engine(name, load_rules()), NOW)
    result: list[BlobResult] = []
    seconds = _cpu(lambda: result.append(scanner.scan(Blob(path="junk.txt", data=data))))
    assert seconds < 8, f"{seconds:.1f} s of CPU for 1 MB"  # was about 30 s, now about 1
    # every hit is still judged (no cap that would hide a real token behind junk)
    assert sum(result[0].rejected.values()) == 80_000
    assert [f.explanation.access.account for f in result[0].findings] == ["contosoafter"]


def test_thousands_of_tokens_in_one_file_scan_in_linear_time() -> None:
    key = _key()
    lines = [
        blob_url("contosomany", "c", f"b{i}", generate_blob_sas(
            "contosomany", "c", f"b{i}", account_key=key,
            permission=BlobSasPermissions(read=True), expiry=EXPIRY,
        ))
        for i in range(3000)
    ]
    data = "\n".join(lines).encode()
    scanner = BlobScanner(make_engine("hyperscan", load_rules()), NOW)
    result: list[BlobResult] = []
    seconds = _cpu(lambda: result.append(scanner.scan(Blob(path="urls.txt", data=data))))
    assert seconds < 30, f"{seconds:.1f} s of CPU"  # was minutes (each snippet masked every secret)
    assert len(result[0].findings) == 3000
    assert all(key not in f.location.snippet for f in result[0].findings)


CATASTROPHIC = """
[[rules]]
id = "my-token"
name = "My token"
description = "d"
parser = "azure-sas"
pattern = 'mytok_'
capture = '(?P<value>mytok_(a+)+b)'
examples = ["mytok_aab"]
"""


def test_a_catastrophic_user_capture_is_refused_before_the_scan(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(CATASTROPHIC)
    with pytest.raises(ConfigError, match="capture can backtrack catastrophically"):
        load_rules((tmp_path,))
    # unguarded, it ran for over a minute on one line of "mytok_" and 30 a's
    for bad in (r"(?P<value>(a|ab)*c)", r"(?P<value>\s*\s*\s*x)", r"(?P<value>(a)\1)"):
        assert check_capture(bad) is not None, bad
    fine = (r"(?P<value>mytok_[a-z0-9]{32})", r"(?P<value>tok_[^\s]+)", r"(?P<value>(?:ab)+c)")
    assert [check_capture(f) for f in fine] == [None, None, None]


def test_user_captures_run_on_a_bounded_window(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        CATASTROPHIC.replace("(?P<value>mytok_(a+)+b)", "(?P<value>mytok_[a-z]+)")
    )
    rules = load_rules((tmp_path,))
    mine = next(r for r in rules if r.id == "my-token")
    assert not mine.builtin and all(r.builtin for r in rules if r is not mine)
    capturer = Capturer([mine])
    data = b"mytok_" + b"a" * 100_000
    [m] = capturer.matches(data, [Hit(end=6, rule=0)])
    assert m.end - m.start <= 6 + USER_WINDOW


def _cli(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "keyscope", *args], capture_output=True, text=True, timeout=120,
        env=env,
    )


def test_bad_user_rules_are_one_error_line_and_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("mytok_aab\n")
    catastrophic = tmp_path / "catastrophic"
    catastrophic.mkdir()
    (catastrophic / "r.toml").write_text(CATASTROPHIC)
    lookbehind = tmp_path / "lookbehind"
    lookbehind.mkdir()
    (lookbehind / "r.toml").write_text(
        CATASTROPHIC.replace("pattern = 'mytok_'", "pattern = '(?<=my)tok_'").replace(
            "(?P<value>mytok_(a+)+b)", "(?P<value>tok_[a-z]+)"
        )
    )
    for rules, engine, message in (
        (catastrophic, "re", "capture can backtrack catastrophically"),
        (lookbehind, "hyperscan", "Hyperscan cannot compile its pattern"),
    ):
        done = _cli(tmp_path / "cache", "scan", "--rules", str(rules), "--engine", engine,
                    "-q", "--no-git", "--fail-on=never", str(target))
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "my-token" in lines[0], done.stderr
        assert "Traceback" not in done.stderr
    # the look-behind is fine for the re engine
    done = _cli(tmp_path / "cache", "scan", "--rules", str(lookbehind), "--engine", "re",
                "-q", "--no-git", "--fail-on=never", str(target))
    assert done.returncode == 0, done.stderr


def test_prefixed_string_literals_continue_a_url(tmp_path: Path, engine: str) -> None:
    """The next literal of a concatenation may carry a prefix: Python's f"…" and r"…",
    C#'s interpolated $"…" and verbatim @"…"."""
    py_url = _blob_sas("contosofstr", "models", "ckpt.pt")
    py_head, py_tail = _at_sig(py_url)
    py = "\n".join([
        "def checkpoint_url(name: str) -> str:",
        "    return (",
        f'        f"{py_head}"',
        f'        f"{py_tail}"',
        "    )",
    ])
    cs_url = _container_sas("contosoverbatim")
    cs_head, cs_tail = _at_sig(cs_url)
    cs = "\n".join([
        "var container = new BlobContainerClient(new Uri(",
        f'    $"{cs_head}" +',
        f'    @"{cs_tail}"));',
    ])
    assert _seen(_scan(tmp_path, "urls.py", py, engine)) == [
        (SAS, "service-sas", "contosofstr", [3])
    ]
    found = _scan(tmp_path, "Program.cs", cs, engine)
    assert _seen(found) == [(SAS, "service-sas", "contosoverbatim", [2])]
    assert _secrets(found) == [_sig(cs_url)]


def test_look_alike_services_are_named_as_the_patterns_alone_would_name_them() -> None:
    # the word gates of filters.other_service never hide a match: every alternative of
    # every pattern, in other cases and with letters that fold to ASCII, inside noise
    import random

    from keyscope.analyze.azure import filters

    def ungated(text: str) -> str | None:
        for service, _, pattern in filters._OTHER_SERVICES:
            if pattern.search(text):
                return f"look-alike: a {service} key, not Azure Storage"
        return None

    samples = ["AccountEndpoint =", "x.documents.azure.com", "COSMOS", "DocumentDB",
               "SharedAccessKeyName", "a.servicebus.windows", "h.azure-devices.net",
               "service_bus", "ServiceBus", "event_hubs", "EventHub", "iot_hub", "IoTHub",
               ";HostName=", "HostName=x", "x.signalr.net", "a.webpubsub.azure", "SignalR",
               "; AccessKey=", "a.azconfig.io", "app_config", "AppConfig", "a.batch.azure.com",
               "batch_account", "x.search.windows.net", "search_admin_key", "SearchKey",
               "api-key", "a.redis.cache.windows", "REDIS", "Endpoint=sb://", "Endpoint = https://",
               "ſervice_bus", "ıot_hub", "İOT_HUB", "cosmoſ", "storage", "AccountKey=", "endpoints"]
    rng = random.Random(11)
    for i in range(3000):
        sample = rng.choice(samples)
        if i % 2:
            sample = "".join(c.upper() if rng.random() < 0.5 else c for c in sample)
        noise = "".join(rng.choice("ab ;=.:/_-") for _ in range(rng.randrange(0, 12)))
        text = noise + sample + noise[::-1]
        assert filters.other_service(text) == ungated(text), text


def test_placeholder_words_in_ascii_secrets_are_found_as_the_pattern_finds_them() -> None:
    # filters.placeholder_secret looks for its words in lower case in ASCII secrets
    import random
    import string

    from keyscope.analyze.azure import filters

    rng = random.Random(3)
    words = ["fake", "SANITIZED", "Redacted", "example", "dummy", "Placeholder", "sample",
             "xxxx", "XXXX", "0000000000", "your", "yOuR"]
    alphabet = string.ascii_letters + string.digits + "+/"
    for i in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        if i % 2:
            cut = rng.randrange(0, len(text) + 1)
            text = text[:cut] + rng.choice(words) + text[cut:]
        if i % 3 == 0:
            text = rng.choice(words) + text
        pattern = filters._PLACEHOLDER_WORDS
        expected = len(pattern.findall(text)) >= 2 or bool(pattern.match(text))
        assert (filters.placeholder_secret(text) == "placeholder secret") == expected, text
