"""The unpack hook (``unpack/``): an expander registered at run time turns a container
blob into member blobs; the worker scans the members (not the container's raw bytes),
to the depth allowed, within the budget, and a hostile container never ends the scan."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscope.model import ScanResult, Skipped
from keyscope.scan import ScanOptions, scan
from keyscope.sources.interface import Blob
from keyscope.unpack import registry
from keyscope.unpack.interface import Budget, Expander, member_path
from tests.sdk import NOW, incident_url, new_key

MAGIC = b"KSPACK\n"  # a toy container: MAGIC, then "name:base64(body)" lines


def pack(members: dict[str, bytes]) -> bytes:
    lines = [f"{name}:{base64.b64encode(body).decode()}" for name, body in members.items()]
    return MAGIC + "\n".join(lines).encode()


class ToyPack(Expander):
    name = "toypack"

    def claims(self, blob: Blob) -> bool:
        return bytes(blob.data[: len(MAGIC)]) == MAGIC

    def expand(self, blob: Blob, budget: Budget) -> Iterator[Blob | Skipped]:
        for line in bytes(blob.data[len(MAGIC) :]).splitlines():
            name, _, body = line.decode().partition(":")
            if name == "boom":
                raise ValueError("a hostile member")
            data = base64.b64decode(body)
            reason = budget.spend(len(data))
            if reason:
                yield Skipped(member_path(blob, name), reason)
                return
            yield Blob(blob.path, data, origin=(*blob.origin, name), oid=blob.oid)


@pytest.fixture
def toypack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "EXPANDERS", [ToyPack()])


def _scan(tmp_path: Path, data: bytes, **options: object) -> ScanResult:
    (tmp_path / "app.pack").write_bytes(data)
    return scan([tmp_path / "app.pack"], ScanOptions(jobs=1, now=NOW, **options))  # type: ignore[arg-type]


def test_members_are_scanned_with_their_origin(tmp_path: Path, toypack: None) -> None:
    url = incident_url("packacct", new_key())
    data = pack({"assets/config.json": f'{{"url": "{url}"}}\n'.encode(), "README": b"hi\n"})
    # the raw container holds the secret Base64-encoded: without the expander it is
    # found at the container itself (origin base64); with it, once, in its member
    result = _scan(tmp_path, data)
    [finding] = result.findings
    assert [loc.origin for loc in finding.locations] == [("assets/config.json",)]
    assert finding.locations[0].line == 1


def test_nested_containers_and_the_depth_limit(tmp_path: Path, toypack: None) -> None:
    url = incident_url("packacct", new_key())
    inner = pack({"deep.env": f"URL={url}\n".encode()})
    data = pack({"inner.pack": inner})
    [finding] = _scan(tmp_path, data).findings
    assert finding.locations[0].origin == ("inner.pack", "deep.env")
    # depth 1: the inner container is scanned as raw bytes (its member Base64-encoded)
    [shallow] = _scan(tmp_path, data, unpack_depth=1).findings
    assert shallow.locations[0].origin == ("inner.pack", "base64")
    # depth 0: nothing is unpacked
    [flat] = _scan(tmp_path, inner, unpack_depth=0).findings
    assert flat.locations[0].origin == ("base64",)


def test_a_spent_budget_and_a_hostile_container_are_skipped_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toypack: None
) -> None:
    url = incident_url("packacct", new_key())
    first = f"URL={url}\n".encode()
    result = _scan(tmp_path, pack({"a.env": first, "boom": b"", "c.env": first}))
    assert [loc.origin for loc in result.findings[0].locations] == [("a.env",)]
    [skipped] = result.skipped
    assert skipped.path.endswith("app.pack") and "toypack: could not be unpacked" in skipped.reason

    from keyscope.unpack import interface

    monkeypatch.setattr(interface.UnpackLimits, "__init__", _two_members_only)
    many = pack({f"m{i}.txt": b"x\n" for i in range(5)})
    result = _scan(tmp_path, many)
    assert [s.reason for s in result.skipped] == [
        "more than 2 members (stopped after 2 members, 4 bytes)"
    ]
    assert result.skipped[0].path.endswith("app.pack!/m2.txt")


def _two_members_only(self: object, depth: int = 8) -> None:
    object.__setattr__(self, "depth", depth)
    for name, value in (("total_bytes", 1 << 30), ("members", 2), ("ratio", 200),
                        ("seconds", 60.0)):
        object.__setattr__(self, name, value)


def test_no_expander_no_change(tmp_path: Path) -> None:
    """With nothing registered (today's default) a container is one opaque blob."""
    url = incident_url("packacct", new_key())
    [finding] = _scan(tmp_path, pack({"a.env": f"URL={url}\n".encode()})).findings
    assert finding.locations[0].origin == ("base64",)
