"""Container images (``unpack/images.py``, ``sources/images.py``), on images built by
the real tools without a daemon: ``umoci`` builds an OCI layout with two layers (a
secret file added in layer 1 and deleted in layer 2, a build-arg-like secret in layer
2's ``created_by``) and a secret in ``ENV``; ``skopeo`` saves it as a docker-archive
(classic ``docker save``) and an oci-archive; ``tar`` packs the layout with a
``manifest.json`` naming ``blobs/sha256/…`` (the Docker 25+ tarball). Built once per
test session."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from keyscope.model import ImageProvenance, Location, ScanResult
from keyscope.scan import ScanOptions, scan
from keyscope.unpack import registry
from keyscope.unpack.archives import TarExpander
from keyscope.unpack.image_layers import LayerChanges, hidden_by
from keyscope.unpack.images import ImageExpander
from keyscope.unpack.interface import UnpackLimits
from tests.sdk import NOW, incident_url, new_key

SARIF_SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"
SCAN_SCHEMA = Path(__file__).resolve().parents[1] / "src" / "keyscope" / "schemas" / "scan-v1.json"
LAYER = re.compile(r"layer ([12]) \(sha256:[0-9a-f]{12}\)")

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("umoci", "skopeo", "tar", "zip")),
    reason="needs umoci and skopeo (scripts/os-packages.txt), tar and zip",
)


@dataclass(frozen=True)
class Images:
    """The fixture image in each form, and the secrets it holds."""

    layout: Path  # OCI layout directory
    docker: Path  # skopeo docker-archive (classic docker save)
    oci: Path  # skopeo oci-archive
    docker25: Path  # OCI layout + manifest.json in one tar (Docker 25+)
    deleted: str  # in app/.env, layer 1; deleted in layer 2
    kept: str  # in app/conf/keep.env, layer 1; in the final file system
    old: str  # in app/conf/old.env, layer 1; overwritten in layer 2
    env: str  # in config Env
    label: str  # in config Labels
    history: str  # in layer 2's created_by

    def forms(self) -> dict[str, Path]:
        return {"docker-archive": self.docker, "oci-archive": self.oci,
                "docker25": self.docker25, "layout": self.layout}  # fmt: skip


def _run(cwd: Path, *argv: str) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    d = tmp_path_factory.mktemp("images")
    deleted = incident_url("layeracct", new_key())
    kept = incident_url("keptacct", new_key())
    old = incident_url("oldacct", new_key())
    label = incident_url("labelacct", new_key())
    history = incident_url("histacct", new_key())
    env = (
        "DefaultEndpointsProtocol=https;AccountName=envacct;"
        f"AccountKey={new_key()};EndpointSuffix=core.windows.net"
    )
    _run(d, "umoci", "init", "--layout", "img")
    _run(d, "umoci", "new", "--image", "img:fixture")
    _run(d, "umoci", "unpack", "--rootless", "--image", "img:fixture", "bundle")
    app = d / "bundle" / "rootfs" / "app"
    (app / "conf").mkdir(parents=True)
    (app / ".env").write_text(f"STORAGE_URL={deleted}\n")
    (app / "conf" / "keep.env").write_text(f"# kept\nURL={kept}\n")
    (app / "conf" / "old.env").write_text(f"URL={old}\n")
    (app / "link").symlink_to("conf/keep.env")
    repack = ["umoci", "repack", "--refresh-bundle", "--image", "img:fixture"]
    _run(d, *repack, "--history.created_by", "COPY app/ /app/", "bundle")
    (app / ".env").unlink()
    (app / "conf" / "old.env").write_text("URL=rotated\n")
    step = f"RUN |1 SAS_URL={history} /bin/sh -c rm /app/.env"
    _run(d, *repack, "--history.created_by", step, "bundle")
    _run(d, "umoci", "config", "--image", "img:fixture",
         "--config.label", f"org.example.store={label}",
         "--config.env", f"AZURE_STORAGE_CONNECTION_STRING={env}")  # fmt: skip
    _run(d, "umoci", "gc", "--layout", "img")
    docker = "docker-archive:fixture-docker.tar:example.com/fixture:1"
    _run(d, "skopeo", "copy", "oci:img:fixture", docker)
    _run(d, "skopeo", "copy", "oci:img:fixture", "oci-archive:fixture-oci.tar:fixture")
    # Docker 25+: the OCI layout and a manifest.json whose paths are blobs/sha256/<hex>
    d25 = d / "d25"
    shutil.copytree(d / "img", d25)
    [desc] = json.loads((d25 / "index.json").read_text())["manifests"]
    manifest = json.loads((d25 / "blobs" / "sha256" / desc["digest"][7:]).read_text())
    blob = "blobs/sha256/{}".format
    legacy = [{"Config": blob(manifest["config"]["digest"][7:]), "RepoTags": ["fixture:25"],
               "Layers": [blob(layer["digest"][7:]) for layer in manifest["layers"]]}]  # fmt: skip
    (d25 / "manifest.json").write_text(json.dumps(legacy))
    _run(d25, "tar", "-cf", str(d / "fixture-docker25.tar"), ".")
    return Images(d / "img", d / "fixture-docker.tar", d / "fixture-oci.tar",
                  d / "fixture-docker25.tar", deleted, kept, old, env, label, history)  # fmt: skip


def _blob(layout: Path, digest: str) -> Path:
    alg, _, hexa = digest.partition(":")
    return layout / "blobs" / alg / hexa


def _scan(path: Path, **options: object) -> ScanResult:
    return scan([path], ScanOptions(jobs=1, now=NOW, **options))  # type: ignore[arg-type]


def _by_account(result: ScanResult) -> dict[str, list[Location]]:
    return {f.explanation.access.account or "": f.locations for f in result.findings}


def test_the_image_expander_claims_before_the_tar_expander() -> None:
    kinds = [type(e) for e in registry.expanders()]
    assert kinds.index(ImageExpander) < kinds.index(TarExpander)


@pytest.mark.parametrize("form", ["docker-archive", "oci-archive", "docker25", "layout"])
def test_every_form_yields_config_members_and_layer_files_with_their_story(
    images: Images, form: str
) -> None:
    path = images.forms()[form]
    result = _scan(path)
    [links] = result.skipped  # app/link, one entry per layer
    assert LAYER.fullmatch(links.path.rsplit("!/", 1)[1])
    assert links.reason == "1 link members not followed (their targets are files of the image)"
    found = _by_account(result)
    assert sorted(found) == ["envacct", "histacct", "keptacct", "labelacct", "layeracct",
                             "oldacct"]  # fmt: skip
    [label] = found["labelacct"]
    assert (label.origin, label.line) == (("config", "Labels"), 1)
    [env] = found["envacct"]
    assert (env.path, env.origin, env.line, env.image) == (str(path), ("config", "Env"), 1, None)
    [hist] = found["histacct"]
    assert hist.origin == ("config", "history") and hist.line == 2  # layer 2's step
    [deleted] = found["layeracct"]
    assert deleted.origin[1:] == ("app/.env",) and deleted.line == 1
    assert LAYER.fullmatch(deleted.origin[0]) and deleted.origin[0].startswith("layer 1 ")
    assert deleted.image is not None
    assert (deleted.image.layer, deleted.image.created_by) == (1, "COPY app/ /app/")
    assert (deleted.image.removed_in, deleted.image.overwritten) == (2, False)
    assert deleted.image.removed_by is not None
    assert deleted.image.removed_by.startswith("RUN |1 SAS_URL=https://histacct.")
    assert deleted.image.digest.startswith("sha256:")
    assert deleted.image.digest[7:19] in deleted.origin[0]
    [kept] = found["keptacct"]
    assert kept.origin[1:] == ("app/conf/keep.env",) and kept.line == 2
    assert kept.image == ImageProvenance(1, deleted.image.digest, "COPY app/ /app/")
    [old] = found["oldacct"]
    assert old.origin[1:] == ("app/conf/old.env",) and old.image is not None
    assert (old.image.layer, old.image.removed_in, old.image.overwritten) == (1, 2, True)


def test_docker25_falls_back_to_manifest_json_when_the_index_is_empty(
    images: Images, tmp_path: Path
) -> None:
    """Early Docker 25 releases wrote indexes without manifests (moby#47065)."""
    d = tmp_path / "d"
    with tarfile.open(images.docker25) as t:
        t.extractall(d, filter="data")  # the test's own fixture, to edit it
    (d / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    _run(d, "tar", "-cf", str(tmp_path / "broken.tar"), ".")
    found = _by_account(_scan(tmp_path / "broken.tar"))
    [deleted] = found["layeracct"]
    assert deleted.image is not None and deleted.image.removed_in == 2


def test_an_image_inside_a_zip_keeps_its_chain_and_story(images: Images, tmp_path: Path) -> None:
    shutil.copy(images.docker, tmp_path / "fixture-docker.tar")
    _run(tmp_path, "zip", "-q", "bundle.zip", "fixture-docker.tar")
    [deleted] = _by_account(_scan(tmp_path / "bundle.zip"))["layeracct"]
    assert deleted.origin[0] == "fixture-docker.tar" and deleted.origin[2] == "app/.env"
    assert deleted.image is not None and deleted.image.removed_in == 2


def test_an_image_root_larger_than_max_file_size_is_still_read(
    images: Images, tmp_path: Path
) -> None:
    """A tarball given as a root is read through a memory map, layer by layer: the
    file-size limit (meant for one text file) does not hide an image. Found by a folder
    walk, it obeys the limit like any file: skipped, and said so."""
    result = _scan(images.docker, max_file_size=1024)
    assert len(result.findings) == 6 and len(result.skipped) == 1  # the link
    shutil.copy(images.docker, tmp_path / "app.tar")
    walked = _scan(tmp_path, max_file_size=1024)
    assert not walked.findings
    [skipped] = walked.skipped
    assert skipped.oversize and skipped.path.endswith("app.tar")


def test_the_budget_applies_per_image(images: Images, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the image's member budget each layer stops at its first member with a
    skipped entry naming the limit; what was read before stays."""
    import keyscope.unpack.image_roots as source

    monkeypatch.setattr(source, "UnpackLimits", lambda: UnpackLimits(members=3))
    result = _scan(images.layout)  # config: Env, Labels, history; then the budget is spent
    accounts = {f.explanation.access.account for f in result.findings}
    assert accounts == {"envacct", "labelacct", "histacct"}
    spent = [s for s in result.skipped if "link members" not in s.reason]
    # one per layer, stops
    assert [s.reason.split(" (")[0] for s in spent] == ["more than 3 members"] * 2
    assert [LAYER.search(s.path).group(1) for s in spent] == ["1", "2"]  # type: ignore[union-attr]
    # the time limit stops the layers' streams too (skipping a member decompresses it)
    monkeypatch.setattr(source, "UnpackLimits", lambda: UnpackLimits(seconds=0))
    late = _scan(images.layout)
    assert not late.findings
    layers = [s for s in late.skipped if LAYER.fullmatch(s.path.rsplit("!/", 1)[1])]
    assert sorted(LAYER.search(s.path).group(1) for s in layers) == ["1", "2"]  # type: ignore[union-attr]
    assert all("took more than 0 s" in s.reason for s in late.skipped)
    assert any("!/app/.env" in s.path or "!/app/conf" in s.path for s in result.skipped)


def test_damaged_images_are_skipped_with_a_reason(images: Images, tmp_path: Path) -> None:
    """Cut short inside a layer, a manifest naming paths outside the archive or a link
    loop: Skipped entries, never a crash."""
    index = json.loads((images.layout / "index.json").read_text())
    manifest = json.loads(_blob(images.layout, index["manifests"][0]["digest"]).read_text())
    blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    names = ["oci-layout", "index.json", index["manifests"][0]["digest"], *blobs]
    names = [n if ":" not in n else "blobs/sha256/" + n[7:] for n in names]
    _run(images.layout, "tar", "-cf", str(tmp_path / "ordered.tar"), *names)
    with tarfile.open(tmp_path / "ordered.tar") as t:
        top = t.getmember(names[-1])
    data = (tmp_path / "ordered.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: top.offset_data + top.size // 2])
    cut = _scan(tmp_path / "cut.tar")  # cut inside layer 2: what is before it stays
    assert sorted(_by_account(cut)) == ["envacct", "histacct", "keptacct", "labelacct",
                                        "layeracct", "oldacct"]  # fmt: skip
    [skipped] = [s for s in cut.skipped if "link members" not in s.reason]
    assert LAYER.fullmatch(skipped.path.rsplit("!/", 1)[1]).group(1) == "2"  # type: ignore[union-attr]
    assert "image layer cannot be read" in skipped.reason
    d = tmp_path / "h"
    d.mkdir()
    attestation = {"predicate": {"args": incident_url("attacct", new_key())}}
    (d / "layer.tar").write_text(json.dumps(attestation))
    (d / "loop").symlink_to("loop2")
    (d / "loop2").symlink_to("loop")
    manifest = [{"Config": "../../etc/passwd", "Layers": ["layer.tar", "loop", "/etc/shadow"]}]
    (d / "manifest.json").write_text(json.dumps(manifest))
    _run(d, "tar", "-cf", str(tmp_path / "hostile.tar"), "manifest.json", "layer.tar", "loop",
         "loop2")  # fmt: skip
    result = _scan(tmp_path / "hostile.tar")
    assert sorted(s.reason for s in result.skipped) == [
        "etc/passwd is not in the archive",
        "image layer cannot be read (etc/shadow is not in the archive)",
        "image layer cannot be read (loop is not in the archive)",
    ]
    # a layer that is no tar (an attestation, an OCI artifact) is scanned as it is
    [found] = _by_account(result)["attacct"]
    assert found.origin == ("layer 1 (layer.tar)",) and found.image is None


def test_whiteouts_opaque_directories_and_replacements() -> None:
    """The OCI layer rules: ``.wh.NAME`` deletes NAME and below, ``.wh..wh..opq`` hides a
    directory's lower children, an entry overwrites, a file replaces a directory tree;
    a layer never hides its own entries."""
    one, two, three = LayerChanges(), LayerChanges(), LayerChanges()
    for name in ("etc/a", "etc/b", "etc/sub/c", "opt/d", "srv/x/y", "keep"):
        one.add(name, is_dir=False)
    two.add("./etc/.wh.a", is_dir=False)
    two.add("opt/.wh..wh..opq", is_dir=False)
    two.add("opt/new", is_dir=False)
    two.add("etc/b", is_dir=False)
    three.add("srv/x", is_dir=False)
    three.add("etc/.wh.sub", is_dir=False)
    layers = [one, two, three]
    assert hidden_by("etc/a", 1, layers) == (2, False)
    assert hidden_by("etc/b", 1, layers) == (2, True)
    assert hidden_by("opt/d", 1, layers) == (2, False)
    assert hidden_by("opt/new", 2, layers) is None
    assert hidden_by("etc/sub/c", 1, layers) == (3, False)
    assert hidden_by("srv/x/y", 1, layers) == (3, False)
    assert hidden_by("keep", 1, layers) is None
    assert hidden_by("/keep", 1, layers) is None


def test_every_format_carries_the_layer_path_and_the_whiteout_story(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from keyscope.cli import main

    shutil.copy(images.docker, tmp_path / "app.tar")
    monkeypatch.chdir(tmp_path)
    argv = ["scan", "-q", "-j", "1", "--fail-on", "never", "app.tar"]
    secrets = [images.deleted, images.kept, images.env, images.history]
    secrets = [s.split("sig=")[1][:20] if "sig=" in s else s.split("AccountKey=")[1][:20]
               for s in secrets]  # fmt: skip
    story = "added in layer 1 (`COPY app/ /app/`), deleted in layer 2 (`RUN |1 SAS_URL=https://histacct."

    main(argv)
    text = capsys.readouterr().out
    assert re.search(r"app\.tar!/layer 1 \(sha256:[0-9a-f]{12}\)!/app/\.env:1:1 ", text)
    assert "app.tar!/config!/Env:1:" in text and "app.tar!/config!/history:2:" in text
    assert story in text and "still in the image" in text
    assert "!/app/conf/keep.env:2:1" in text and "in the final file system" in text

    main([*argv, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SCAN_SCHEMA.read_text()))
    locs = {loc["origin"][-1]: loc for f in doc["findings"] for loc in f["locations"]}
    assert locs["app/.env"]["image"]["removed_in"] == 2
    assert locs["app/.env"]["image"]["removed_by"].startswith("RUN |1 SAS_URL=https://histacct.")
    assert locs["app/conf/keep.env"]["image"]["removed_in"] is None
    assert locs["Env"]["origin"] == ["config", "Env"] and locs["Env"]["image"] is None

    main([*argv, "--format", "jsonl"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    records = {r["location"]["origin"][-1]: r["location"] for r in lines if "location" in r}
    schema = json.loads(SCAN_SCHEMA.read_text())  # a JSON lines location is the document's
    location = schema["properties"]["findings"]["items"]["properties"]["locations"]["items"]
    for record in records.values():
        jsonschema.validate(record, location)
    assert records["app/.env"]["image"]["removed_in"] == 2
    assert LAYER.fullmatch(records["app/.env"]["origin"][0])

    main([*argv, "--format", "sarif"])
    raw = capsys.readouterr().out
    sarif = json.loads(raw)
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    results = sarif["runs"][0]["results"]
    [gone] = [r for r in results if "app/.env" in r["message"]["text"]]
    assert story in gone["message"]["text"] and "still in the image" in gone["message"]["text"]
    assert gone["properties"]["image"]["removedIn"] == 2
    assert gone["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app.tar"
    [related] = gone["relatedLocations"]
    assert re.fullmatch(r"inside app\.tar!/layer 1 \(sha256:[0-9a-f]{12}\)!/app/\.env",
                        related["message"]["text"])  # fmt: skip
    for out in (text, json.dumps(doc), json.dumps(lines), raw):
        for secret in secrets:
            assert secret not in out


def test_zstd_layers_are_read_like_gzip_ones(images: Images, tmp_path: Path) -> None:
    """skopeo writes zstd layers on request: they are streamed (backports.zstd) and give
    what the gzip image gives, with the same stories."""
    out = tmp_path / "zstd.tar"
    _run(images.layout.parent, "skopeo", "copy", "--dest-compress-format", "zstd",
         "oci:img:fixture", f"oci-archive:{out}:z")  # fmt: skip
    result = _scan(out)
    found = _by_account(result)
    assert sorted(found) == ["envacct", "histacct", "keptacct", "labelacct", "layeracct",
                             "oldacct"]  # fmt: skip
    [deleted] = found["layeracct"]
    assert deleted.image is not None and deleted.image.removed_in == 2
    [links] = result.skipped  # app/link: the one entry, as for gzip layers
    assert "link members not followed" in links.reason


def test_a_layout_with_several_images_names_each(tmp_path: Path) -> None:
    """Two tags of one layout, different content: each image's members are under
    ``image <tag>``."""
    _run(tmp_path, "umoci", "init", "--layout", "multi")
    for tag in ("alpha", "beta"):
        _run(tmp_path, "umoci", "new", "--image", f"multi:{tag}")
        _run(tmp_path, "umoci", "unpack", "--rootless", "--image", f"multi:{tag}", tag)
        (tmp_path / tag / "rootfs" / f"{tag}.env").write_text(
            f"URL={incident_url(tag + 'acct', new_key())}\n"
        )
        _run(tmp_path, "umoci", "repack", "--image", f"multi:{tag}", tag)
    found = _by_account(_scan(tmp_path / "multi"))
    for tag in ("alpha", "beta"):
        [loc] = found[tag + "acct"]
        assert loc.origin[0] == f"image {tag}" and loc.origin[2] == f"{tag}.env"
        assert LAYER.fullmatch(loc.origin[1]) and loc.image is not None


def test_unpack_depth_0_leaves_an_image_root_opaque(images: Images) -> None:
    """``--unpack-depth 0``: the tarball is one opaque blob (its uncompressed layers'
    bytes still scanned, with no member path)."""
    flat = _scan(images.docker, unpack_depth=0)
    assert flat.findings
    assert all(not loc.origin and loc.image is None for f in flat.findings for loc in f.locations)
