"""Secrets stay secret in every output, even when a snippet's cut runs through one, it
sits beside the one reported, or it is encoded; and nothing printed to a terminal can
drive it. Tokens are signed by the Azure SDK; repositories are made with real git."""

from __future__ import annotations

import base64
import http.server
import json
import re
import subprocess
import tempfile
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.model import ProbeResult, RawFinding, Verification
from keyscope.redact import MARGIN, mask, terminal_safe, window
from keyscope.report import jsonout, sarif, text
from keyscope.report.progress import CountLine
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, account_sas, new_key

ACCOUNT = "contosodata"
RUN = 12  # no run this long of a secret may be shown


def sas_url(key: str, **kwargs: object) -> tuple[str, str]:
    """An account SAS URL signed with ``key``, and its signature."""
    sas = account_sas(ACCOUNT, key, expiry=NOW + timedelta(days=400), **kwargs)  # type: ignore[arg-type]
    sig = parse_qs(sas)["sig"][0]
    return f"https://{ACCOUNT}.blob.core.windows.net/models/m.ckpt?{sas}", sig


def connection_string(key: str) -> str:
    return (
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={key};"
        "EndpointSuffix=core.windows.net"
    )


def sig_forms(sig: str) -> list[str]:
    once = quote(sig, safe="")
    return [sig, once, quote(sig, safe="/"), quote(once, safe="")]


def outputs(root: Path, show_secrets: bool = False) -> dict[str, str]:
    """One scan of ``root`` rendered in every format (JSONL as streamed)."""
    streamed: list[RawFinding] = []
    options = ScanOptions(jobs=1, now=NOW, show_secrets=show_secrets)
    result = scan([str(root)], options, on_finding=streamed.append)
    assert result.findings, "the test needs at least one reported credential"
    return {
        "text": text.render_scan(result),
        "text-all": text.render_scan(result, every=True, verbose=True),
        "json": jsonout.render_scan(result),
        "jsonl": "".join(jsonout.jsonl_finding(r) for r in streamed)
        + jsonout.jsonl_summary(result),
        "sarif": sarif.render_scan(result, [str(root)]),
    }


def shown_runs(secret: str, out: str) -> list[str]:
    return [secret[i : i + RUN] for i in range(len(secret) - RUN + 1) if secret[i : i + RUN] in out]


def assert_hidden(forms: list[str], outs: dict[str, str]) -> None:
    for fmt, out in outs.items():
        for form in forms:
            runs = shown_runs(form, out)
            at = out.find(runs[0]) if runs else 0
            assert not runs, (fmt, form, out[max(0, at - 300) : at + 100])


# --- the cases of issue 10, one by one ---------------------------------------------------


def test_a_connection_string_on_a_long_line_is_masked_before_the_cut(tmp_path: Path) -> None:
    key, other, third = new_key(), new_key(), new_key()
    url, sig = sas_url(key)
    # The SAS is reported; the window around it starts inside the key of the connection
    # string before it and ends inside the one after it.
    line = (
        "x" * 200 + connection_string(other) + " " + url + f" AccountKey={third}" + "z" * 200
    )
    (tmp_path / "app.cfg").write_text(line + "\n")
    assert_hidden([other, third, *sig_forms(sig)], outputs(tmp_path))


def test_a_secret_at_the_edge_of_the_masked_piece_is_dropped(tmp_path: Path) -> None:
    # Masked neighbours shrink, so the shown window reaches back to where the piece
    # masked with it was cut: a signature cut there must not show.
    url, sig = sas_url(new_key())
    edge_url, edge_sig = sas_url(new_key())
    encoded = [
        base64.b64encode(connection_string(new_key()).encode()).decode() for _ in range(4)
    ]
    masked = " ".join(encoded)  # about 1000 characters that mask to 23
    # the masked piece starts 20 characters before edge_url ends
    gap = " " * (MARGIN - 21 - len(masked)) + masked + " "
    (tmp_path / "notes.md").write_text(f"{edge_url}{gap}{url}\n")
    assert_hidden([*sig_forms(sig), *sig_forms(edge_sig), *encoded], outputs(tmp_path))


def test_a_line_with_two_keys_shows_neither(tmp_path: Path) -> None:
    k1, k2 = new_key(), new_key()
    line = f'primary = "{connection_string(k1)}"; secondary = "{connection_string(k2)}"'
    (tmp_path / "settings.ini").write_text("w" * 120 + line + "\n")
    assert_hidden([k1, k2], outputs(tmp_path))


def test_a_base64_connection_string_in_a_kubernetes_secret(tmp_path: Path) -> None:
    key = new_key()
    encoded = base64.b64encode(connection_string(key).encode()).decode()
    (tmp_path / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: storage\ntype: Opaque\n"
        f"data:\n  connection: {encoded}\n"
    )
    outs = outputs(tmp_path)
    assert "base64" in outs["json"]  # found inside the encoding
    assert_hidden([key, encoded], outs)


def test_show_secrets_shows_the_secret_and_nothing_else_changes(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "app.env").write_text(f"STORAGE={connection_string(key)}\n")
    outs = outputs(tmp_path, show_secrets=True)
    for fmt in ("text", "json", "jsonl"):
        assert key in outs[fmt], fmt
    assert key not in json.loads(outs["json"])["findings"][0]["locations"][0]["snippet"]


# --- the property: any secret, anywhere on a long line, in any format --------------------

KINDS = ("sas", "key", "connection-string", "base64-connection-string", "url-encoded-sas")
keys = (
    st.binary(min_size=64, max_size=64)
    .filter(lambda b: len(set(b)) > 32)  # random, as real keys are (not a placeholder)
    .map(lambda b: base64.b64encode(b).decode())
)
fillers = st.text(alphabet="abc xyz-_.:/(){}[]<>'\"=;,", max_size=300)
separators = st.sampled_from(["", " ", ";", ",", "\t", '"', "'", "&", "=", "\n"])
items = st.tuples(st.sampled_from(KINDS), keys, fillers, separators)


def place(kind: str, key: str) -> tuple[str, list[str]]:
    """One secret of ``kind`` as it would appear in a file, and the forms to look for."""
    url, sig = sas_url(key)
    if kind == "sas":
        return url, sig_forms(sig)
    if kind == "key":
        return key, [key, quote(key, safe="")]
    if kind == "connection-string":
        return connection_string(key), [key]
    if kind == "base64-connection-string":
        encoded = base64.b64encode(connection_string(key).encode()).decode()
        return encoded, [key, encoded]
    return "https://login.example/next?to=" + quote(url, safe=""), sig_forms(sig)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lead=fillers,
    placed=st.lists(items, min_size=1, max_size=5),
    reported_key=keys,
)
# A URL-encoded SAS run into a connection string: its "setting name" was the encoded URL,
# quoted whole in the reason the candidate was set aside (--verbose, JSON not_reported).
@example(
    lead="",
    placed=[
        ("sas", "wGDXeJGAIowO+RKV29eIWXia+t0fWqM7M1McLQETjm1/Z52MpEihWrnfCSMOm1zMJ8SDNIy2raBjI6sq"
                "TzNI9A==", "/cx", "\t"),
        ("url-encoded-sas", "A" * 43 + "BAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fIA==", "", ""),
        ("connection-string", "A" * 43 + "BAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fIA==", "", ""),
    ],
    reported_key="AAAAAAAAAAAAAAAAAAAAAAAAAAABAgMEAAAHd3yIjI8AAJaeAAAAAAAArrW6vsIAANDR19jZ2tve3+Po9vz+/w==",
)
def test_no_run_of_any_secret_is_shown_in_any_format(
    lead: str, placed: list[tuple[str, str, str, str]], reported_key: str
) -> None:
    # One SAS that is surely reported, with neighbours of every kind around it.
    anchor, forms = place("sas", reported_key)
    parts = [lead, " ", anchor, " "]
    for kind, key, filler, sep in placed:
        value, more = place(kind, key)
        parts += [sep, value, sep, filler]
        forms += more
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "notes.md").write_text("".join(parts) + "\n")
        assert_hidden(forms, outputs(root))


def test_window_masks_then_cuts() -> None:
    key = new_key()
    line = "a" * 100 + " " + connection_string(key) + " " + "b" * 100
    start = line.index(key) + 40  # a "match" whose window cuts the key in half
    shown = window(line, start, start + 5, 40)
    assert not shown_runs(key, shown)
    assert shown.startswith("…") and shown.endswith("…")
    assert mask(f"sig={key[:44]}").endswith("…") and terminal_safe("a\x1bb") == "a\\eb"


# --- item 8: one token, 78 copies in a README, two commits --------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Alice", "-c", "user.email=alice@example.com",
         *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def incident(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    url, _ = sas_url(new_key(), protocol="https,http")
    lines = [f"- checkpoint {i}: [download]({url})" for i in range(78)]
    readme = repo / "README.md"
    readme.write_text("# Models\n\n" + "\n".join(lines) + "\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "models")
    readme.write_text("# Models\n\n" + "\n".join(lines) + "\n\nLicence: MIT\n")
    git(repo, "commit", "-q", "-am", "licence")
    return repo


def _scan(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main(["scan", "--now", "2026-11-26T00:00:00Z", "-j", "1", *args])
    return capsys.readouterr().out


def test_one_secret_in_78_places_reads_in_a_screen(
    incident: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _scan([str(incident)], capsys)
    lines = out.splitlines()
    assert len(lines) < 40, out
    snippets = [line for line in lines if "README.md:" in line and "[download]" in line]
    assert len(snippets) == 3
    # the same 78 places in both commits' README: one place each
    assert re.search(r"… and 75 more in \S+README.md \(lines 3–80; --all-locations", out), out
    timeline = lines[lines.index("Timeline (git history)") + 2 :]
    rows = timeline[: next(i for i, row in enumerate(timeline) if not row.strip())]
    # one row: introduced by the first commit (the second kept it: neither an
    # introduction nor a removal), its 78 lines gathered
    assert len(rows) == 1 and "introduced" in rows[0] and "(+77 more lines)" in rows[0], rows

    every = _scan(["--all-locations", str(incident)], capsys)
    assert sum("[download]" in line for line in every.splitlines()) == 78


def test_sarif_results_are_unique_and_repository_relative(
    incident: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = _scan(["--format", "sarif", str(incident)], capsys)
    run = json.loads(out)["runs"][0]
    results = run["results"]
    places = {
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["locations"][0]["physicalLocation"]["region"]["startColumn"],
        )
        for r in results
    }
    assert len(places) == len(results)  # unique: one result per place
    assert len(results) == 78
    assert {uri for uri, _, _ in places} == {"README.md"}
    assert str(tmp_path) not in out and "file://" not in out
    assert "uri" not in run["originalUriBaseIds"]["%SRCROOT%"]


# --- item 10: what to do next ------------------------------------------------------------


def _udk_url(key: str) -> str:
    from azure.storage.blob import UserDelegationKey, generate_blob_sas

    udk = UserDelegationKey()
    udk.signed_oid, udk.signed_tid = str(uuid.uuid4()), str(uuid.uuid4())
    udk.signed_start = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    udk.signed_expiry = (NOW + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    udk.signed_service, udk.signed_version, udk.value = "b", "2020-12-06", key
    sas = generate_blob_sas(ACCOUNT, "models", "m.ckpt", user_delegation_key=udk,
                            permission="r", expiry=NOW + timedelta(days=5))
    return f"https://{ACCOUNT}.blob.core.windows.net/models/m.ckpt?{sas}"


def _policy_url(key: str) -> str:
    from azure.storage.blob import generate_container_sas

    sas = generate_container_sas(ACCOUNT, "models", account_key=key, policy_id="readers")
    return f"https://{ACCOUNT}.blob.core.windows.net/models?{sas}"


@pytest.mark.parametrize(
    ("make", "command"),
    [
        (lambda k: sas_url(k)[0], "az storage account keys renew --account-name contosodata"),
        (connection_string, "az storage account keys renew --account-name contosodata"),
        (_policy_url, "az storage container policy delete --account-name contosodata"),
        (_udk_url, "az storage account revoke-delegation-keys --name contosodata"),
    ],
    ids=["account-sas", "account-key", "policy-sas", "user-delegation-sas"],
)
def test_the_report_ends_with_what_to_do_about_the_worst(
    make: object, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(make)
    (tmp_path / "config.txt").write_text(f"value = {make(new_key())}\n")
    out = _scan([str(tmp_path)], capsys)
    steps = out[out.index("What to do now") : out.index("Scanned ")]
    assert command in steps
    assert "--verify" in steps


# --- issue 11, item 4: nothing printed can drive the terminal ----------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[1A\r\nFAKE LINE\u202e"


def _no_control(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\r" not in out
    assert "\nFAKE LINE" not in out


def test_file_names_and_matched_lines_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = sas_url(new_key())
    name = f"evil{ESCAPES.replace(chr(10), '').replace('/', '')}.txt"
    (tmp_path / name).write_text(f"{ESCAPES.replace(chr(10), ' ')} {url}\n")
    out = _scan(["--color", "never", str(tmp_path)], capsys)
    _no_control(out)
    assert "\\e]0;pwned\\x07\\e[2J" in out and "\\u202e" in out
    # JSON carries the original name, escaped as JSON requires.
    doc = _scan(["--format", "json", str(tmp_path)], capsys)
    assert "\x1b" not in doc
    path = json.loads(doc)["findings"][0]["locations"][0]["path"]
    assert path.endswith(name)
    sarif_doc = _scan(["--format", "sarif", str(tmp_path)], capsys)
    assert "\x1b" not in sarif_doc


def test_git_authors_and_subjects_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    url, _ = sas_url(new_key())
    (repo / "a.md").write_text(f"{url}\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Eve\x1b]0;pwned\x07", "-c",
         "user.email=eve@example.com", "commit", "-q", "-m", "subject \x1b[2J\x1b[1A cleared"],
        check=True,
    )
    out = _scan([str(repo)], capsys)
    _no_control(out)
    assert "Eve\\e]0;pwned" in out and "subject \\e[2J\\e[1A cleared" in out


def test_server_text_under_verify_is_escaped_in_text_and_kept_in_json(
    tmp_path: Path,
) -> None:
    url, _ = sas_url(new_key())
    (tmp_path / "a.md").write_text(f"{url}\n")
    result = scan([str(tmp_path)], ScanOptions(jobs=1, now=NOW))
    probe = ProbeResult(
        probe="Get Account Information",
        method="GET",
        url=f"https://{ACCOUNT}.blob.core.windows.net/?restype=account&comp=properties",
        status="refused",
        http_status=302,
        error_code="Bad\x1b[2JCode",
        detail=f"redirected to Location: http://x/\x1b]0;pwned\x07{ESCAPES}",
        facts={"server": "srv\x1b[1A"},
    )
    verdict = Verification("refused", None, "the server\x1b[2J said no", (probe,),
                           datetime(2026, 11, 26, tzinfo=UTC).isoformat())
    f = result.findings[0]
    f.explanation = replace(f.explanation, verification=verdict)
    out = text.render_scan(result)
    _no_control(out)
    assert "Bad\\e[2JCode" in out and "srv\\e[1A" in out and "the server\\e[2J said no" in out
    doc = json.loads(jsonout.render_scan(result))
    assert doc["findings"][0]["explanation"]["verification"]["probes"][0]["detail"] == probe.detail
    assert "\x1b" not in jsonout.render_scan(result) and "\x1b" not in sarif.render_scan(result)


class _Hostile(http.server.BaseHTTPRequestHandler):
    """A storage look-alike whose answers try to drive the terminal and echo a key."""

    key = ""

    def do_GET(self) -> None:
        body = (
            "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code><Message>"
            f"\x1b[2J\x1b[1Adenied; AccountKey={self.key}</Message></Error>"
        ).encode()
        self.send_response(403)
        self.send_header("x-ms-error-code", "Auth\x1b[2JFailed")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_server_answers_under_verify_are_escaped_and_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = type("Hostile", (_Hostile,), {"key": new_key()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sas = account_sas("acct", new_key(), services="b", permission="rl",
                          expiry=NOW + timedelta(days=30))
        url = f"http://127.0.0.1:{server.server_address[1]}/acct/models?{sas}"
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "a.md").write_text(f"{url}\n")
        common = ["scan", "-q", "-j", "1", "--verify=deep", "--allow-internal",
                  "--verify-interval", "0", "--audit-log", str(tmp_path / "audit.jsonl"),
                  "--fail-on", "never", str(tmp_path / "src")]
        main(common)
        out, err = capsys.readouterr()
        main([*common, "--format", "json"])
        doc, _ = capsys.readouterr()
    finally:
        server.shutdown()
        server.server_close()
    _no_control(out + err)
    assert "\\e[2J\\e[1Adenied" in out, out
    assert "\x1b" not in doc  # JSON escapes it ...
    probes = json.loads(doc)["findings"][0]["explanation"]["verification"]["probes"]
    assert any("\x1b" in (p["detail"] or "") + (p["error_code"] or "") for p in probes)  # ... kept
    audit = (tmp_path / "audit.jsonl").read_text()
    for text_out in (out, err, doc, audit):
        assert not shown_runs(handler.key, text_out)


def test_progress_and_errors_are_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    stream = io.StringIO()
    line = CountLine(stream, "checking\x1b]0;pwned\x07")
    line.update(1, 2)
    assert "\x07" not in stream.getvalue() and "checking\\e]0;pwned\\x07: 1/2" in stream.getvalue()
    code = main(["scan", "--config", "policy\x1b[2J.toml", "."])
    err = capsys.readouterr().err
    assert code == 2 and "\x1b" not in err and "policy\\e[2J.toml" in err
    # a path that does not exist is named in the error
    assert main(["scan", "missing\x1b]0;pwned\x07"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "missing\\e]0;pwned\\x07" in err


def test_explain_escapes_what_the_credential_names(capsys: pytest.CaptureFixture[str]) -> None:
    from azure.storage.blob import generate_blob_sas

    blob = "m\x1b]0;pwned\x07\x1b[2J.ckpt"
    sas = generate_blob_sas(ACCOUNT, "models", blob, account_key=new_key(), permission="r",
                            expiry=NOW + timedelta(days=5))
    url = f"https://{ACCOUNT}.blob.core.windows.net/models/{quote(blob)}?{sas}"
    assert main(["explain", "--now", "2026-11-26T00:00:00Z", url]) == 0
    out = capsys.readouterr().out
    _no_control(out)
    assert "m\\e]0;pwned\\x07\\e[2J.ckpt" in out
