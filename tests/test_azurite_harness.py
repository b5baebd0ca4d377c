"""The Azurite fixture itself: it runs, is seeded, signs like Azure, and sees every change.

Changes are made only on throwaway containers, queues and tables, which are deleted
again, so the session's seeded state stays as other tests expect it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    AccessPolicy,
    AccountSasPermissions,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    CorsRule,
    ResourceTypes,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.queue import QueueClient, QueueSasPermissions, generate_queue_sas

from tests.azurite import HOST, Azurite, AzuriteError, Seed, new_key, snapshot_diff

DEV_KEY_PREFIX = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1"  # the public emulator key's start


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def unchanged(azurite: Azurite) -> Iterator[dict[str, object]]:
    """The state before the test; the test must leave the account exactly like this."""
    before = azurite.snapshot()
    yield before
    after = azurite.snapshot()
    assert after == before, snapshot_diff(before, after)


def test_runs_on_loopback_with_a_private_account(azurite: Azurite) -> None:
    assert azurite.running
    assert set(azurite.ports) == {"blob", "queue", "table"}
    assert len(set(azurite.ports.values())) == 3
    for url, service in ((azurite.blob_url, "blob"), (azurite.queue_url, "queue"),
                         (azurite.table_url, "table")):
        assert url == f"http://{HOST}:{azurite.ports[service]}/{azurite.account}"
        assert url in azurite.connection_string
    assert azurite.account == "keyscopetest"
    assert azurite.key != azurite.key2
    assert len(azurite.key) == len(azurite.key2) == 88
    assert not azurite.key.startswith(DEV_KEY_PREFIX)


def test_seeded_state_reads_back_through_the_sdks(azurite: Azurite, azurite_seed: Seed) -> None:
    blobs = azurite.blob_service()
    assert sorted(c.name for c in blobs.list_containers()) == sorted(azurite_seed.blobs)
    for container, contents in azurite_seed.blobs.items():
        client = blobs.get_container_client(container)
        for name, (data, content_type, metadata) in contents.items():
            props = client.get_blob_client(name).get_blob_properties()
            assert props.metadata == metadata
            assert props.content_settings.content_type == content_type
            assert client.download_blob(name).readall() == data
    policy = blobs.get_container_client(azurite_seed.policy_container).get_container_access_policy()
    [identifier] = policy["signed_identifiers"]
    assert identifier.id == azurite_seed.policy_id
    assert identifier.access_policy.permission == "rl"

    queue = azurite.queue_service().get_queue_client(azurite_seed.queue)
    assert queue.get_queue_properties().approximate_message_count == 2
    assert [m.content for m in queue.peek_messages(max_messages=32)] == list(azurite_seed.messages)

    table = azurite.table_service().get_table_client(azurite_seed.table)
    [entity] = list(table.list_entities())
    assert dict(entity) == dict(azurite_seed.entity)


def test_sdk_round_trip_on_a_throwaway_container(azurite: Azurite,
                                                 unchanged: dict[str, object]) -> None:
    blobs = azurite.blob_service()
    container = blobs.create_container(f"tmp-{uuid.uuid4().hex[:12]}")
    try:
        container.upload_blob("a/b.txt", b"hello azurite", metadata={"k": "v"})
        assert container.download_blob("a/b.txt").readall() == b"hello azurite"
        assert [b.name for b in container.list_blobs()] == ["a/b.txt"]
    finally:
        container.delete_container()


def test_snapshot_is_stable_across_reads(azurite: Azurite, azurite_seed: Seed) -> None:
    first = azurite.snapshot()
    # Reads (download, peek, query) must not register as changes.
    blobs = azurite.blob_service()
    for container, contents in azurite_seed.blobs.items():
        for name in contents:
            blobs.get_container_client(container).download_blob(name).readall()
    azurite.queue_service().get_queue_client(azurite_seed.queue).peek_messages()
    list(azurite.table_service().get_table_client(azurite_seed.table).list_entities())
    second = azurite.snapshot()
    assert second == first, snapshot_diff(first, second)
    assert azurite.snapshot() == second


def test_snapshot_covers_what_it_claims(azurite: Azurite, azurite_seed: Seed) -> None:
    state = azurite.snapshot()
    containers = state["blob"]["containers"]
    shared = containers[azurite_seed.policy_container]
    assert shared["access_policy"]["signed_identifiers"][0]["id"] == azurite_seed.policy_id
    blob = next(b for b in containers["models"]["blobs"]
                if b["properties"]["name"] == "checkpoint.ckpt")
    assert blob["properties"]["metadata"] == {"owner": "ml-team", "stage": "prod"}
    assert len(blob["sha256"]) == 64
    assert blob["properties"]["content_settings"]["content_md5"]
    queue = state["queue"]["queues"][azurite_seed.queue]
    assert queue["properties"]["approximate_message_count"] == 2
    assert [m["dequeue_count"] for m in queue["messages"]] == [0, 0]
    assert state["table"]["tables"][azurite_seed.table]["entities"][0]["data"]["RowKey"] == "0001"
    for service in ("blob", "queue", "table"):
        assert state[service]["service_properties"]


def _changes(azurite: Azurite, before: dict[str, object]) -> list[str]:
    diff = snapshot_diff(before, azurite.snapshot())
    assert diff, "the snapshot missed a change"
    return diff


def test_snapshot_sees_blob_changes_and_returns_to_equal(azurite: Azurite,
                                                         unchanged: dict[str, object]) -> None:
    blobs = azurite.blob_service()
    name = f"tmp-{uuid.uuid4().hex[:12]}"
    container = blobs.create_container(name)
    try:
        before = azurite.snapshot()
        container.set_container_metadata({"changed": "yes"})
        _changes(azurite, before)

        before = azurite.snapshot()
        container.upload_blob("x.bin", b"one")
        _changes(azurite, before)

        before = azurite.snapshot()
        container.upload_blob("x.bin", b"two", overwrite=True)  # same size, new content
        _changes(azurite, before)

        before = azurite.snapshot()
        container.get_blob_client("x.bin").set_blob_metadata({"m": "1"})
        _changes(azurite, before)

        before = azurite.snapshot()
        container.get_blob_client("x.bin").stage_block("YmxvY2s=", b"uncommitted")
        _changes(azurite, before)

        before = azurite.snapshot()
        container.get_blob_client("x.bin").create_snapshot()
        _changes(azurite, before)

        before = azurite.snapshot()
        policy = AccessPolicy(permission=ContainerSasPermissions(read=True),
                              expiry=datetime(2099, 1, 1, tzinfo=UTC))
        container.set_container_access_policy({"p": policy})
        _changes(azurite, before)
    finally:
        container.delete_container()


def test_snapshot_sees_queue_table_and_service_changes(azurite: Azurite,
                                                       unchanged: dict[str, object]) -> None:
    suffix = uuid.uuid4().hex[:12]
    queue = azurite.queue_service().create_queue(f"tmp-{suffix}")
    table = azurite.table_service().create_table(f"tmp{suffix}")
    blobs = azurite.blob_service()
    original = blobs.get_service_properties()
    try:
        queue.send_message("m")
        before = azurite.snapshot()
        queue.receive_message(visibility_timeout=1)  # a dequeue is a change
        _changes(azurite, before)

        before = azurite.snapshot()
        table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
        _changes(azurite, before)

        before = azurite.snapshot()
        blobs.set_service_properties(cors=[CorsRule(["https://example.invalid"], ["GET"])])
        _changes(azurite, before)
    finally:
        blobs.set_service_properties(cors=original["cors"])
        queue.delete_queue()
        table.delete_table()


def test_user_delegation_sas_reads_a_blob(azurite: Azurite, azurite_seed: Seed,
                                          unchanged: dict[str, object]) -> None:
    container, (name, (data, _, _)) = "models", next(iter(azurite_seed.blobs["models"].items()))
    now = _now()
    udk = azurite.user_delegation_key(str(uuid.uuid4()), str(uuid.uuid4()),
                                      now - timedelta(minutes=5), now + timedelta(hours=1))
    sas = generate_blob_sas(azurite.account, container, name, user_delegation_key=udk,
                            permission=BlobSasPermissions(read=True),
                            expiry=now + timedelta(hours=1))
    assert "skoid=" in sas and "sig=" in sas
    url = f"{azurite.blob_url}/{container}/{name}?{sas}"
    blob = BlobClient.from_blob_url(url, transport=azurite.transport())
    assert blob.download_blob().readall() == data

    udk.value = "A" * 43 + "="  # any other key: Azurite must refuse the signature
    forged = generate_blob_sas(azurite.account, container, name, user_delegation_key=udk,
                               permission=BlobSasPermissions(read=True),
                               expiry=now + timedelta(hours=1))
    with pytest.raises(HttpResponseError) as caught:
        BlobClient.from_blob_url(f"{azurite.blob_url}/{container}/{name}?{forged}",
                                 transport=azurite.transport()).get_blob_properties()
    assert caught.value.status_code == 403


@pytest.mark.parametrize("which", ["key", "key2"])
def test_account_sas_lists_containers(azurite: Azurite, azurite_seed: Seed, which: str,
                                      unchanged: dict[str, object]) -> None:
    sas = generate_account_sas(azurite.account, getattr(azurite, which),
                               resource_types=ResourceTypes(service=True, container=True),
                               permission=AccountSasPermissions(read=True, list=True),
                               expiry=_now() + timedelta(hours=1))
    client = BlobServiceClient(azurite.blob_url, credential=sas, transport=azurite.transport())
    assert sorted(c.name for c in client.list_containers()) == sorted(azurite_seed.blobs)
    assert client.get_account_information()["sku_name"]


def test_account_sas_from_another_key_is_refused(azurite: Azurite) -> None:
    sas = generate_account_sas(azurite.account, new_key(),
                               resource_types=ResourceTypes(service=True),
                               permission=AccountSasPermissions(read=True, list=True),
                               expiry=_now() + timedelta(hours=1))
    client = BlobServiceClient(azurite.blob_url, credential=sas, transport=azurite.transport())
    with pytest.raises(HttpResponseError) as caught:
        list(client.list_containers())
    assert caught.value.status_code == 403


def test_stored_access_policy_sas_works(azurite: Azurite, azurite_seed: Seed,
                                        unchanged: dict[str, object]) -> None:
    sas = generate_container_sas(azurite.account, azurite_seed.policy_container,
                                 account_key=azurite.key, policy_id=azurite_seed.policy_id)
    assert "si=readpolicy" in sas and "sp=" not in sas
    client = ContainerClient.from_container_url(
        f"{azurite.blob_url}/{azurite_seed.policy_container}?{sas}", transport=azurite.transport())
    names = [b.name for b in client.list_blobs()]
    assert names == sorted(azurite_seed.blobs[azurite_seed.policy_container])


def test_queue_sas_peek_is_read_only(azurite: Azurite, azurite_seed: Seed,
                                     unchanged: dict[str, object]) -> None:
    sas = generate_queue_sas(azurite.account, azurite_seed.queue, azurite.key,
                             permission=QueueSasPermissions(read=True),
                             expiry=_now() + timedelta(hours=1))
    queue = QueueClient.from_queue_url(f"{azurite.queue_url}/{azurite_seed.queue}",
                                       credential=sas, transport=azurite.transport())
    assert len(queue.peek_messages(max_messages=32)) == len(azurite_seed.messages)


def test_startup_failure_reports_azurite_stderr() -> None:
    # Azurite refuses --location together with --inMemoryPersistence and exits at once.
    emulator = Azurite(extra_args=["--location", "."])
    with pytest.raises(AzuriteError, match=r"exited during startup(.|\n)*inMemoryPersistence"):
        emulator.start()
    assert not emulator.running
