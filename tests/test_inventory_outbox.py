"""The outbox: alerts from real scans, sent by a plain urllib callable to a real HTTP
receiver on loopback that can be told to answer 500, stall or be down. Every failure
is retried on a later run, with backoff, until delivered: no alert lost, none sent
twice once delivered."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from keyscope.inventory import outbox
from keyscope.inventory.alerts import SCHEMA, TRIGGERS
from keyscope.inventory.store import open_store
from tests.inventory_support import keyscope, leak, rows, scan
from tests.sdk import NOW

AT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")  # the scans' time: the alerts' creation
PAYLOAD_KEYS = {"schema", "trigger", "fingerprint", "provider", "kind", "account", "severity",
                "sentence", "expires", "first_seen", "scan_id", "locations", "revocation",
                "owners"}


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST body; ``mode``: "ok",
    "500" or "stall" (answers after ``stall`` seconds). ``stop``/``start`` take it down
    and bring it back on the same port."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.stall = 2.0
        self.received: list[dict[str, object]] = []  # bodies answered 200
        self.attempts = 0
        self.port = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                if receiver.mode == "stall":
                    time.sleep(receiver.stall)
                if receiver.mode != "ok":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"receiver broken")
                    return
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def urllib_sender(url: str, timeout: float = 10.0) -> outbox.Send:
    """A plain webhook sender: POST the payload as JSON; any error raises."""

    def send(payload: Mapping[str, object]) -> None:
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()

    return send


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    if r._server is not None:
        r.stop()


def test_backoff_doubles_to_six_hours() -> None:
    assert [outbox.backoff(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert outbox.backoff(9) == 15360
    assert outbox.backoff(10) == outbox.backoff(50) == 6 * 3600


def test_an_outage_is_recovered_with_no_alert_lost_or_duplicated(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], receiver: Receiver
) -> None:
    tree = tmp_path / "tree"
    keys = [leak(tree / f"app{i}.env", f"acme{i}") for i in range(3)]
    scan(capsys, db_url, "--no-git", "--now", AT, str(tree))
    send = {"hook": urllib_sender(receiver.url)}

    def drain(minutes: float) -> outbox.DrainResult:
        with open_store(db_url) as store:
            return outbox.drain(store, send, NOW + timedelta(minutes=minutes))

    def state() -> list[tuple[str, int]]:
        return [(r["status"], r["attempts"])
                for r in rows(db_url, "SELECT * FROM deliveries ORDER BY alert_id")]

    receiver.mode = "500"
    result = drain(0)
    assert len(result.failed) == 3 and not result.delivered
    assert receiver.attempts == 3 and state() == [("pending", 1)] * 3
    [error] = {r["last_error"] for r in rows(db_url, "SELECT last_error FROM deliveries")}
    assert "500" in error and len(error) <= outbox.ERROR_CHARS

    assert drain(0.5).failed == [] and receiver.attempts == 3  # not due: backoff (1 min)

    # a receiver that stalls: each send gives up after its timeout (short here; the
    # generous default elsewhere keeps a loaded machine from failing good answers)
    receiver.mode = "stall"
    send["hook"] = urllib_sender(receiver.url, timeout=0.5)
    started = time.monotonic()
    assert len(drain(1).failed) == 3
    assert time.monotonic() - started < 5 and state() == [("pending", 2)] * 3
    send["hook"] = urllib_sender(receiver.url)

    receiver.stop()  # down: connection refused
    assert len(drain(2).failed) == 0  # the second retry waits 2 minutes
    assert len(drain(3.5).failed) == 3 and state() == [("pending", 3)] * 3

    code, out = keyscope(capsys, "inventory", "outbox", "--db", db_url)
    assert code == 0 and out.count("-> hook: pending (3 attempt(s)") == 3

    receiver.start()
    receiver.mode = "ok"
    result = drain(60)
    assert len(result.delivered) == 3 and state() == [("delivered", 4)] * 3
    assert drain(600).delivered == []  # delivered stays delivered

    # one more secret, one more alert: only it goes out
    leak(tree / "late.env", "acmelate")
    scan(capsys, db_url, "--no-git", "--now", AT, str(tree))
    assert len(drain(601).delivered) == 1
    fingerprints = [b["fingerprint"] for b in receiver.received]
    assert len(fingerprints) == len(set(fingerprints)) == 4

    # a target configured later gets every alert once
    team = Receiver()
    try:
        send["team"] = urllib_sender(team.url)
        assert len(drain(602).delivered) == 4
        assert len(drain(603).delivered) == 0
        assert sorted(b["fingerprint"] for b in team.received) == sorted(fingerprints)
    finally:
        team.stop()

    for body in receiver.received:
        assert set(body) == PAYLOAD_KEYS and body["schema"] == SCHEMA
        assert body["trigger"] in TRIGGERS and body["owners"] == []
        text = json.dumps(body)
        assert not any(k[:20] in text for k in keys)
    code, out = keyscope(capsys, "inventory", "outbox", "--db", db_url)
    assert out.strip() == "0 delivery(ies)"


def test_payload_locations_are_capped_at_twenty(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    key = leak(tree / "f0.env", "acmewide")
    for i in range(1, 25):
        leak(tree / f"f{i:02}.env", "acmewide", key=key)
    scan(capsys, db_url, "--no-git", "--now", AT, str(tree))
    [alert] = rows(db_url, "SELECT payload FROM alerts")
    body = json.loads(alert["payload"])
    assert len(body["locations"]) == 20 and body["more"] == 5
    assert body["locations"][0] == {"source": str(tree), "location": "f0.env:1",
                                    "commit": None, "author": None}


def test_skipped_and_a_send_that_drains_again_sends_once(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    leak(tree / "a.env", "acmea")
    leak(tree / "b.env", "acmeb")
    scan(capsys, db_url, "--no-git", "--now", AT, str(tree))
    store = open_store(db_url)
    try:
        [first, second] = outbox.due(store, ["mail"], NOW)
        outbox.skipped(store, first.alert_id, "mail", NOW, "below min-severity high")
        sent: list[int] = []
        inner: list[outbox.DrainResult] = []

        def send(payload: Mapping[str, object]) -> None:
            sent.append(1)
            with open_store(db_url) as other:  # a second process draining meanwhile
                inner.append(outbox.drain(other, {"mail": send}, NOW))

        result = outbox.drain(store, {"mail": send}, NOW)
        assert len(result.delivered) == 1 and sent == [1] and inner[0].delivered == []
        statuses = {r["alert_id"]: r["status"] for r in rows(db_url, "SELECT * FROM deliveries")}
        assert statuses == {first.alert_id: "skipped", second.alert_id: "delivered"}
        assert outbox.due(store, ["mail"], NOW + timedelta(days=1)) == []
    finally:
        store.close()


def test_a_target_that_does_not_want_an_alert_marks_it_skipped_not_delivered(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A send that answers False (a destination below whose min-severity the alert
    is) leaves the delivery skipped: `inventory outbox` never calls it delivered."""
    tree = tmp_path / "tree"
    leak(tree / "a.env", "acmea")
    scan(capsys, db_url, "--no-git", "--now", AT, str(tree))
    with open_store(db_url) as store:
        result = outbox.drain(store, {"pager": lambda payload: False}, NOW)
        assert result.delivered == [] and result.failed == []
        assert outbox.due(store, ["pager"], NOW + timedelta(days=1)) == []
    [row] = rows(db_url, "SELECT status FROM deliveries")
    assert row["status"] == "skipped"
