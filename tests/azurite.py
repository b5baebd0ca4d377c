"""Run the real Azurite storage emulator (Blob, Queue, Table) for tests.

The emulator is the npm package pinned in ``tests/azurite/package.json``; it is
installed on first use. Each run gets a custom account with fresh random keys
(never the public dev key), listens only on 127.0.0.1 on free ports, keeps all
data in memory and has telemetry off, so no traffic leaves the machine.

``Azurite.snapshot()`` records every piece of state the account holds, so a test
can prove that a "read-only" probe changed nothing.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import dataclasses
import enum
import hashlib
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient, UserDelegationKey
    from azure.storage.queue import QueueServiceClient

AZURITE_DIR = Path(__file__).resolve().with_name("azurite")
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite"
HOST = "127.0.0.1"
ACCOUNT = "keyscopetest"
SERVICES = ("blob", "queue", "table")
# Azurite derives user delegation keys from this public seed (blob/utils/constants.ts).
UDK_SIGNING_SEED = b"azurite-user-delegation-signing-seed-v1"
# The REST version the installed SDK signs with; Azurite 3.37.0 knows up to 2026-06-06,
# hence --skipApiVersionCheck.
UDK_VERSION = "2026-10-06"

_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at http://[^:/]+:(\d+)"
)


class AzuriteError(RuntimeError):
    """Azurite could not be installed, started or reached."""


def new_key() -> str:
    """A fresh random account key in Azure's format (64 bytes, standard Base64)."""
    return base64.b64encode(os.urandom(64)).decode()


def install(timeout: float = 300.0) -> Path:
    """Install the pinned Azurite with npm unless it is already there; return its binary."""
    if AZURITE_BIN.exists():
        return AZURITE_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError("npm not found on PATH; it is needed to install Azurite "
                           f"(npm install --prefix {AZURITE_DIR} --no-audit --no-fund)")
    cmd = [npm, "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AzuriteError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0 or not AZURITE_BIN.exists():
        raise AzuriteError(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return AZURITE_BIN


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGTERM when the test process dies,
    so a killed pytest (a timeout, ^C twice) leaves no emulator behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _drain(stream: IO[str], sink: list[str], on_line: Callable[[str], None] | None) -> None:
    """Copy a child's output into ``sink`` line by line (so its pipe never fills)."""
    for line in stream:
        sink.append(line)
        if on_line is not None:
            on_line(line)


def end_child(process: subprocess.Popen[str] | None, readers: Sequence[threading.Thread]) -> None:
    """Terminate a child (kill it if it lingers), then join its output readers and
    close its pipes."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for reader in readers:  # they end at EOF, once the process is gone
        reader.join(timeout=5)
    if process is not None:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _udk_time(value: datetime | str) -> str:
    """The ``skt``/``ske`` text: ISO 8601 UTC to the second, as the service issues it."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Azurite:
    """One Azurite process with a private account, started on free loopback ports."""

    def __init__(self, account: str = ACCOUNT, *, startup_timeout: float = 60.0,
                 extra_args: Sequence[str] = ()) -> None:
        """Prepare (not start) an emulator; ``extra_args`` go to the command line (``--loose``)."""
        self.account = account
        self.extra_args = tuple(extra_args)
        self.key = new_key()
        self.key2 = new_key()
        self.startup_timeout = startup_timeout
        self.ports: dict[str, int] = {}
        self.startup_seconds: float | None = None
        self.seeded: Seed | None = None
        self._process: subprocess.Popen[str] | None = None
        self._workdir: str | None = None
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Azurite:
        """Install if needed, launch Azurite and wait until every service answers."""
        if self._process is not None:
            raise AzuriteError("Azurite is already running")
        binary = install()
        began = time.monotonic()
        self._workdir = tempfile.mkdtemp(prefix="keyscope-azurite-")
        cmd = [str(binary),
               "--blobHost", HOST, "--blobPort", "0",
               "--queueHost", HOST, "--queuePort", "0",
               "--tableHost", HOST, "--tablePort", "0",
               "--inMemoryPersistence", "--extentMemoryLimit", "256",
               "--skipApiVersionCheck", "--disableProductStyleUrl",
               "--disableTelemetry", "--silent", *self.extra_args]
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{self.account}:{self.key}:{self.key2}"}
        env.pop("AZURITE_DB", None)  # an external DB would share state across runs
        ready = threading.Event()

        def on_line(line: str) -> None:
            found = _LISTENING.search(line)
            if found:
                self.ports[found.group(1).lower()] = int(found.group(2))
                if len(self.ports) == len(SERVICES):
                    ready.set()

        # Azurite binds port 0 itself and prints the ports it got: no race with other
        # processes between picking a free port and binding it.
        self._process = subprocess.Popen(
            cmd, cwd=self._workdir, env=env, text=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        assert self._process.stdout is not None and self._process.stderr is not None
        self._readers = [
            threading.Thread(target=_drain, args=(stream, sink, hook), daemon=True)
            for stream, sink, hook in ((self._process.stdout, self._stdout, on_line),
                                       (self._process.stderr, self._stderr, None))]
        for reader in self._readers:
            reader.start()
        deadline = began + self.startup_timeout
        try:
            while not ready.wait(0.02):
                if self._process.poll() is not None:
                    raise AzuriteError(self._failure("exited during startup"))
                if time.monotonic() > deadline:
                    raise AzuriteError(self._failure(
                        f"did not report all ports within {self.startup_timeout:g} s"))
            for service in SERVICES:
                self._wait_for_port(service, deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_for_port(self, service: str, deadline: float) -> None:
        """Block until the service's port accepts a TCP connection."""
        while True:
            try:
                with socket.create_connection((HOST, self.ports[service]), timeout=1.0):
                    return
            except OSError as exc:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise AzuriteError(self._failure("exited during startup")) from exc
                if time.monotonic() > deadline:
                    raise AzuriteError(self._failure(
                        f"{service} port {self.ports[service]} never answered")) from exc
                time.sleep(0.05)

    def _failure(self, what: str) -> str:
        code = self._process.poll() if self._process is not None else None
        return (f"Azurite {what} (exit code {code}).\n"
                f"stderr:\n{''.join(self._stderr)[-4000:]}\n"
                f"stdout:\n{''.join(self._stdout)[-2000:]}")

    def stop(self) -> None:
        """Terminate Azurite (kill it if it lingers) and remove its working directory."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        end_child(process, self._readers)
        self._readers = []
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the Azurite process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- endpoints -------------------------------------------------------------------------

    def _url(self, service: str) -> str:
        if service not in self.ports:
            raise AzuriteError("Azurite is not started")
        return f"http://{HOST}:{self.ports[service]}/{self.account}"

    @property
    def blob_url(self) -> str:
        """Path-style Blob endpoint, e.g. ``http://127.0.0.1:PORT/keyscopetest``."""
        return self._url("blob")

    @property
    def queue_url(self) -> str:
        """Path-style Queue endpoint."""
        return self._url("queue")

    @property
    def table_url(self) -> str:
        """Path-style Table endpoint."""
        return self._url("table")

    @property
    def connection_string(self) -> str:
        """A connection string with the three endpoints and key1."""
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};"
                f"AccountKey={self.key};BlobEndpoint={self.blob_url};"
                f"QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};")

    # -- SDK clients -----------------------------------------------------------------------

    @staticmethod
    def transport() -> Any:
        """A fresh SDK transport that ignores HTTP(S)_PROXY, so traffic stays on 127.0.0.1.

        Pass it as ``transport=`` to any SDK client built from a SAS URL in tests.
        """
        from azure.core.pipeline.transport import RequestsTransport

        return RequestsTransport(use_env_settings=False)

    def blob_service(self) -> BlobServiceClient:
        """A Blob service client signed with the account key."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string,
                                                        transport=self.transport())

    def queue_service(self) -> QueueServiceClient:
        """A Queue service client signed with the account key."""
        from azure.storage.queue import QueueServiceClient

        return QueueServiceClient.from_connection_string(self.connection_string,
                                                         transport=self.transport())

    def table_service(self) -> TableServiceClient:
        """A Table service client signed with the account key."""
        from azure.data.tables import TableServiceClient

        return TableServiceClient.from_connection_string(self.connection_string,
                                                         transport=self.transport())

    # -- user delegation -------------------------------------------------------------------

    @staticmethod
    def user_delegation_key(oid: str, tid: str, start: datetime | str, expiry: datetime | str,
                            version: str = UDK_VERSION) -> UserDelegationKey:
        """The user delegation key Azurite accepts for these ``skoid/sktid/skt/ske/skv``.

        Azurite does not ask Entra ID: it derives the key as
        HMAC-SHA256(seed, "skoid\\nsktid\\nskt\\nske\\nb\\nskv"), Base64, over the exact
        strings that appear in the SAS. ``start``/``expiry`` must bracket the current time.
        """
        from azure.storage.blob import UserDelegationKey

        udk = UserDelegationKey()  # type: ignore[no-untyped-call]
        udk.signed_oid = oid
        udk.signed_tid = tid
        udk.signed_start = _udk_time(start)
        udk.signed_expiry = _udk_time(expiry)
        udk.signed_service = "b"
        udk.signed_version = version
        to_sign = "\n".join([oid, tid, udk.signed_start, udk.signed_expiry, "b", version])
        digest = hmac.new(UDK_SIGNING_SEED, to_sign.encode(), hashlib.sha256).digest()
        udk.value = base64.b64encode(digest).decode()
        return udk

    # -- state -----------------------------------------------------------------------------

    def seed(self) -> Seed:
        """Create the standard fixture data (see ``Seed``) in an empty account.

        Also stored as ``self.seeded``.
        """
        from azure.storage.blob import AccessPolicy, ContainerSasPermissions, ContentSettings

        seed = Seed()
        blobs = self.blob_service()
        for container, contents in seed.blobs.items():
            client = blobs.create_container(container, metadata={"team": "ml", "env": "prod"})
            for name, (data, content_type, metadata) in contents.items():
                client.upload_blob(name, data, metadata=metadata,
                                   content_settings=ContentSettings(content_type=content_type))
        policy = AccessPolicy(permission=ContainerSasPermissions(read=True, list=True),
                              start=seed.policy_start, expiry=seed.policy_expiry)
        blobs.get_container_client(seed.policy_container).set_container_access_policy(
            {seed.policy_id: policy})
        queue = self.queue_service().create_queue(seed.queue, metadata={"purpose": "jobs"})
        for message in seed.messages:
            queue.send_message(message)
        table = self.table_service().create_table(seed.table)
        table.create_entity(dict(seed.entity))
        self.seeded = seed
        return seed

    def snapshot(self) -> dict[str, Any]:
        """All state of the account, as plain data that compares with ``==``.

        Covers service properties, containers (properties, metadata, ACL and stored
        policies), blobs incl. snapshots/versions/uncommitted blobs (properties, tags,
        block lists, SHA-256 of the content), queues (properties, ACL, peeked messages
        with their dequeue counts; nothing is dequeued) and tables (ACL, entities).
        """
        return {"blob": self._blob_state(), "queue": self._queue_state(),
                "table": self._table_state()}

    def _blob_state(self) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError

        service = self.blob_service()
        containers: dict[str, Any] = {}
        for item in service.list_containers(include_metadata=True):
            client = service.get_container_client(item.name)
            blobs: list[Any] = []
            for blob in client.list_blobs(include=["metadata", "snapshots", "uncommittedblobs",
                                                   "tags", "copy", "versions"]):
                entry = {"properties": _plain(blob)}
                blob_client = client.get_blob_client(blob.name, snapshot=blob.snapshot,
                                                     version_id=blob.version_id)
                try:
                    data = blob_client.download_blob().readall()
                    entry["sha256"] = hashlib.sha256(data).hexdigest()
                except HttpResponseError as exc:  # e.g. an uncommitted blob has no content
                    entry["sha256"] = f"unreadable: HTTP {exc.status_code}"
                if str(_plain(blob.blob_type)) == "BlockBlob" and blob.snapshot is None:
                    committed, uncommitted = blob_client.get_block_list("all")
                    entry["blocks"] = {"committed": _plain(committed),
                                       "uncommitted": _plain(uncommitted)}
                blobs.append(entry)
            containers[item.name] = {
                "properties": _plain(client.get_container_properties()),
                "access_policy": _plain(client.get_container_access_policy()),
                "blobs": blobs,
            }
        return {"service_properties": _plain(service.get_service_properties()),
                "containers": containers}

    def _queue_state(self) -> dict[str, Any]:
        service = self.queue_service()
        queues: dict[str, Any] = {}
        for item in service.list_queues(include_metadata=True):
            client = service.get_queue_client(item.name)
            queues[item.name] = {
                "properties": _plain(client.get_queue_properties()),
                "access_policy": _plain(client.get_queue_access_policy()),
                # Peek is read-only (never Get Messages, which would dequeue).
                "messages": _plain(client.peek_messages(max_messages=32)),
            }
        return {"service_properties": _plain(service.get_service_properties()),
                "queues": queues}

    def _table_state(self) -> dict[str, Any]:
        service = self.table_service()
        tables: dict[str, Any] = {}
        for item in service.list_tables():
            client = service.get_table_client(item.name)
            entities = [{"data": _plain(dict(entity)), "metadata": _plain(entity.metadata)}
                        for entity in client.list_entities()]
            tables[item.name] = {"access_policy": _plain(client.get_table_access_policy()),
                                 "entities": entities}
        return {"service_properties": _plain(service.get_service_properties()),
                "tables": tables}


@dataclasses.dataclass(frozen=True)
class Seed:
    """Names and contents of the standard fixture that ``Azurite.seed()`` creates."""

    blobs: Mapping[str, Mapping[str, tuple[bytes, str, dict[str, str]]]] = dataclasses.field(
        default_factory=lambda: {
            "models": {
                "checkpoint.ckpt": (b"\x80\x04fake-checkpoint" * 64, "application/octet-stream",
                                    {"owner": "ml-team", "stage": "prod"}),
                "README.md": (b"# models\n", "text/markdown", {"owner": "ml-team"}),
            },
            "backups": {
                "db/2026-11-01.sql.gz": (b"\x1f\x8bbackup-1", "application/gzip",
                                         {"retention": "30d"}),
                "db/2026-11-02.sql.gz": (b"\x1f\x8bbackup-2", "application/gzip",
                                         {"retention": "30d"}),
            },
            "shared": {
                "reports/q3.csv": (b"region,total\neu,42\n", "text/csv", {"source": "bi"}),
            },
        })
    policy_container: str = "shared"
    policy_id: str = "readpolicy"
    policy_start: datetime = datetime(2020, 1, 1, tzinfo=UTC)
    policy_expiry: datetime = datetime(2099, 1, 1, tzinfo=UTC)
    queue: str = "jobs"
    messages: tuple[str, ...] = ("resize image 1", "resize image 2")
    table: str = "inventory"
    entity: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {
        "PartitionKey": "eu", "RowKey": "0001", "item": "gpu node", "count": 3})


def _plain(value: Any, depth: int = 0) -> Any:
    """SDK models, enums, datetimes and bytes as nested dicts/lists of plain values."""
    if depth > 20:
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value, depth + 1)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in sorted(value.items(), key=_key)}
    if hasattr(value, "_asdict"):  # NamedTuple, e.g. tables' EntityProperty
        return _plain(value._asdict(), depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v, depth + 1) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if hasattr(value, "__dict__"):
        fields = {k: v for k, v in vars(value).items() if not k.startswith("_")}
        return {"__type__": type(value).__name__, **_plain(fields, depth + 1)}
    return repr(value)


def _key(item: tuple[Any, Any]) -> str:
    return str(item[0])


def snapshot_diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Paths at which two snapshots differ (empty when equal), for readable failures."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}/{key}"
            if key not in before:
                out.append(f"{where}: added")
            elif key not in after:
                out.append(f"{where}: removed")
            else:
                out.extend(snapshot_diff(before[key], after[key], where))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            out.extend(snapshot_diff(old, new, f"{path}[{index}]"))
        return out
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]

