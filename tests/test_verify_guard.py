"""``--verify`` against hostile input: the audit line goes out before the request (and
no request goes out without it), malformed ports and host names are refused without
ending the scan, ``--allow-internal=HOST:PORT`` allows only those, and what verify
prints on the terminal is escaped while what it stores is the server's own text.

Probes go to a real HTTP server on 127.0.0.1 (plain HTTP is allowed to loopback only).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

import keyscope
from keyscope.cli import main
from keyscope.model import Explanation
from keyscope.verify import Target, plan_notice, verify_all
from keyscope.verify.guard import InternalHost, parse_internal_hosts
from keyscope.verify.transport import NotSent, Request, Transport, VerifyOptions
from tests.sdk import account_sas, new_key

ESC = "\x1b"


def sas() -> str:
    return account_sas("acct", new_key(), services="b", permission="r",
                       expiry=datetime.now(UTC) + timedelta(hours=2))


class _Server(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``answer``; notes what the audit log held on arrival."""

    hits: ClassVar[list[str]]
    log_on_arrival: ClassVar[list[list[dict[str, Any]]]]
    audit_log: ClassVar[Path | None]
    answer: ClassVar[tuple[int, dict[str, str], bytes]]

    def do_GET(self) -> None:
        cls = type(self)
        cls.hits.append(self.path)
        log = cls.audit_log
        lines = log.read_text().splitlines() if log and log.exists() else []
        cls.log_on_arrival.append([json.loads(x) for x in lines])
        status, headers, body = cls.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, type[_Server]]]:
    handler = type("Server", (_Server,), {
        "hits": [], "log_on_arrival": [], "audit_log": tmp_path / "audit.jsonl",
        "answer": (404, {"x-ms-error-code": "ContainerNotFound"}, b""),
    })
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def options(tmp_path: Path, **kw: Any) -> VerifyOptions:
    base: dict[str, Any] = {"per_host_interval": 0.0, "timeout": 5.0,
                            "audit_log": tmp_path / "audit.jsonl"}
    return VerifyOptions(**(base | kw))


def check(url: str, opts: VerifyOptions) -> Explanation:
    [e] = keyscope.explain(url, verify=opts)
    assert e.verification is not None
    return e


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# --- the audit log comes first ------------------------------------------------------------


def test_audit_line_is_on_disk_before_the_request_arrives(
    server: tuple[int, type[_Server]], tmp_path: Path
) -> None:
    port, handler = server
    url = f"http://127.0.0.1:{port}/acct/models?{sas()}"
    e = check(url, options(tmp_path, allow_internal=parse_internal_hosts(f"127.0.0.1:{port}")))
    assert e.verification is not None and e.verification.status == "live"
    [seen] = handler.log_on_arrival  # what the log held when the request reached the server
    [request] = seen
    assert request["event"] == "request" and request["probe"] == "Get Account Information"
    assert "sig=REDACTED" in request["url"] and request["credential"] == e.fingerprint
    log = records(tmp_path / "audit.jsonl")
    assert [r["event"] for r in log] == ["request", "result"]
    result = log[1]
    assert result["id"] == request["id"]
    assert (result["sent"], result["outcome"], result["httpStatus"]) == (True, "answered", 404)
    assert result["url"] == request["url"]


@pytest.mark.parametrize("where", ["under-a-file", "dev-full"])
def test_unwritable_audit_log_refuses_the_probe(
    server: tuple[int, type[_Server]], tmp_path: Path, where: str
) -> None:
    port, handler = server
    (tmp_path / "plain").write_text("")
    if where == "dev-full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    # A real OSError either way: a directory that is a file, a device that is full.
    log = tmp_path / "plain" / "audit.jsonl" if where == "under-a-file" else Path("/dev/full")
    url = f"http://127.0.0.1:{port}/acct/models?{sas()}"
    allow = parse_internal_hosts(f"127.0.0.1:{port}")
    v = check(url, options(tmp_path, audit_log=log, allow_internal=allow)).verification
    assert handler.hits == []  # nothing left the machine unrecorded
    assert v is not None and (v.status, v.live) == ("refused-by-keyscope", None)
    detail = v.probes[0].detail or ""
    assert f"the audit log {log} cannot be written" in detail, detail


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    return repo


def _scan_verify(*args: str) -> int:
    """``keyscope scan --verify`` of ``args`` (options, then the path), JSON, no pauses."""
    return main(["scan", "-q", "-j", "1", "--format", "json", "--fail-on", "never", "--verify",
                 "--verify-interval", "0", *args])


def test_scan_goes_on_when_the_audit_log_is_unwritable(
    server: tuple[int, type[_Server]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, handler = server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = _repo(tmp_path, {"a.py": f"URL = 'http://127.0.0.1:{port}/acct/models?{sas()}'\n"})
    (tmp_path / "plain").write_text("")
    rc = _scan_verify(f"--allow-internal=127.0.0.1:{port}",
                      "--audit-log", str(tmp_path / "plain" / "log.jsonl"), str(repo))
    out, _ = capsys.readouterr()
    assert rc == 0 and handler.hits == []
    [finding] = json.loads(out)["findings"]
    assert finding["explanation"]["verification"]["status"] == "refused-by-keyscope"


# --- malformed destinations ---------------------------------------------------------------


@pytest.mark.parametrize("netloc", [
    "acct.blob.core.windows.net:70000",
    "acct.blob.core.windows.net:99999999999",
    "acct.blob.core.windows.net:0",
    "acct.blob.core.windows.net:-1",
    "acct.blob.core.windows.net:+443",
    "acct.blob.core.windows.net:443:1",
])
def test_malformed_port_is_refused_not_a_crash(netloc: str, tmp_path: Path) -> None:
    url = f"https://{netloc}/models?{sas()}"
    found = keyscope.analyze.azure.reader.read_credentials(url).sas
    assert found, f"the parser no longer takes {netloc} as an endpoint: pick another form"
    transport = Transport(options(tmp_path), resolver=lambda host, port: pytest.fail(host))
    [v] = verify_all([Target(found[0], "acct", "fp")], options(tmp_path), transport=transport)
    assert (v.status, v.live) == ("refused-by-keyscope", None)
    assert "port" in (v.probes[0].detail or "")


@pytest.mark.parametrize("host", [
    "a" * 64 + ".blob.core.windows.net",  # a label over 63 characters (IDNA refuses it)
    "acct..blob.core.windows.net",
    "acct\x1b.blob.core.windows.net",
    "acct .blob.core.windows.net",
    "\u00ad.blob.core.windows.net",
    "x" * 250 + ".blob.core.windows.net",
])
def test_malformed_host_is_refused_before_any_lookup(host: str, tmp_path: Path) -> None:
    url = f"https://{host}/?restype=account&comp=properties"
    transport = Transport(options(tmp_path), resolver=lambda host, port: pytest.fail(host))
    with pytest.raises(NotSent) as refused:
        transport.send(Request("Get Account Information", "GET", url, url))
    assert refused.value.status == "refused-by-keyscope"
    assert "not a valid host name" in refused.value.detail


def test_scan_with_a_malformed_port_goes_on(
    server: tuple[int, type[_Server]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, handler = server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = _repo(tmp_path, {
        "bad.py": f"URL = 'https://acct.blob.core.windows.net:70000/m?{sas()}'\n",
        "good.py": f"URL = 'http://127.0.0.1:{port}/acct/models?{sas()}'\n",
    })
    rc = _scan_verify(f"--allow-internal=127.0.0.1:{port}",
                      "--audit-log", str(tmp_path / "audit.jsonl"), str(repo))
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    status = {f["locations"][0]["path"].rsplit("/", 1)[1]:
              f["explanation"]["verification"]["status"] for f in doc["findings"]}
    assert status == {"bad.py": "refused-by-keyscope", "good.py": "live"}
    assert len(handler.hits) == 1


def test_one_failing_check_does_not_end_the_others(tmp_path: Path) -> None:
    def broken(host: str, port: int) -> list[str]:
        raise RuntimeError(f"resolver bug for {host}")

    targets = []
    for i in range(3):
        [found] = keyscope.analyze.azure.reader.read_credentials(
            f"https://acct{i}.blob.core.windows.net/models?{sas()}").sas
        targets.append(Target(found, None, "fp"))
    verdicts = verify_all(targets, options(tmp_path),
                          transport=Transport(options(tmp_path), resolver=broken))
    assert [v.status for v in verdicts] == ["not-verifiable"] * 3
    assert "RuntimeError" in verdicts[0].summary and "acct0" not in verdicts[0].summary


# --- --allow-internal=HOST[:PORT] ---------------------------------------------------------


def test_allow_internal_list_allows_only_what_it_names(
    server: tuple[int, type[_Server]], tmp_path: Path
) -> None:
    port, handler = server
    url = f"http://127.0.0.1:{port}/acct/models?{sas()}"

    def status(allow: bool | tuple[InternalHost, ...]) -> str:
        v = check(url, options(tmp_path, allow_internal=allow)).verification
        assert v is not None
        return v.status

    assert status(parse_internal_hosts(f"127.0.0.1:{port}")) == "live"
    assert status(parse_internal_hosts("127.0.0.1")) == "live"  # every port of that host
    assert status(True) == "live"  # bare --allow-internal: every internal destination
    assert len(handler.hits) == 3
    for other in (f"127.0.0.1:{port + 1}", "10.0.0.1", f"localhost:{port}", "[::1]"):
        assert status(parse_internal_hosts(other)) == "refused-by-keyscope", other
    assert status(False) == "refused-by-keyscope"
    assert len(handler.hits) == 3


def test_allow_internal_entries_are_parsed_strictly() -> None:
    assert [str(h) for h in parse_internal_hosts("127.0.0.1:10000, LocalHost.,[::1]:9,::1")] == [
        "127.0.0.1:10000", "localhost", "[::1]:9", "[::1]"]
    assert parse_internal_hosts("[::ffff:127.0.0.1]:5") == (InternalHost("127.0.0.1", 5),)
    for bad in ("127.0.0.1:70000", "host:0", "host:", "a b", "", "h:1:2", "[::1", "x" * 64):
        with pytest.raises(ValueError):
            parse_internal_hosts(bad)


def test_cli_allow_internal_forms(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"https://acct.blob.core.windows.net/models?{sas()}"
    log = ["--audit-log", str(tmp_path / "a.jsonl")]
    assert main(["explain", "--verify", "--allow-internal=127.0.0.1:99999", *log, url]) == 2
    assert "--allow-internal: '127.0.0.1:99999' is not HOST or HOST:PORT" in capsys.readouterr().err
    assert main(["explain", "--verify", "--allow-internal", "--allow-internal=a:1", *log, url]) == 2
    assert "not both" in capsys.readouterr().err


def test_bare_allow_internal_does_not_swallow_a_path(
    server: tuple[int, type[_Server]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, handler = server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = _repo(tmp_path, {"a.py": f"URL = 'http://127.0.0.1:{port}/acct/models?{sas()}'\n"})
    rc = _scan_verify("--audit-log", str(tmp_path / "audit.jsonl"),
                      "--allow-internal", str(repo))
    assert rc == 0 and len(handler.hits) == 1
    assert "--allow-internal: private and loopback destinations are not refused" in (
        capsys.readouterr().err)


# --- the terminal gets escapes, the report gets the server's text ----------------------------


def test_notice_escapes_what_the_scanned_file_chose(tmp_path: Path) -> None:
    [found] = keyscope.analyze.azure.reader.read_credentials(
        f"https://acct{ESC}\x9b2J\u202e.blob.core.windows.net/models?{sas()}").sas
    text = plan_notice([Target(found, None, "fp")], options(tmp_path))
    assert ESC not in text
    assert "acct\\e\\x9b2J\\u202e.blob.core.windows.net" in text  # ESC, CSI, RTL override


def test_server_text_is_stored_as_sent_and_stderr_stays_clean(
    server: tuple[int, type[_Server]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    port, handler = server
    message = f"Signature did not match{ESC}[2J{ESC}]0;pwned\a"
    body = (f"<?xml version='1.0'?><Error><Code>AuthenticationFailed</Code>"
            f"<Message>{message}</Message></Error>").encode()
    handler.answer = (403, {"x-ms-error-code": "AuthenticationFailed"}, body)
    url = f"http://127.0.0.1:{port}/acct/models?{sas()}"
    e = check(url, options(tmp_path, allow_internal=parse_internal_hosts(f"127.0.0.1:{port}")))
    v = e.verification
    assert v is not None and v.status == "signature-rejected"
    assert v.probes[0].detail == message  # the original text: escaping is the renderer's job
    handler.answer = (302, {"Location": f"https://evil{ESC}[31m.example/x"}, b"")
    rc = main(["explain", "--verify", f"--allow-internal=127.0.0.1:{port}", "--format", "json",
               "--verify-interval", "0", "--audit-log", str(tmp_path / "a.jsonl"),
               f"http://127.0.0.1:{port}/acct/{ESC}[2J/x?{sas()}"])
    out, err = capsys.readouterr()
    assert rc == 0 and ESC not in err
    [cred] = json.loads(out)["credentials"]
    assert cred["verification"]["status"] == "redirect-refused"
    assert f"evil{ESC}[31m.example" in cred["verification"]["probes"][0]["detail"]
