"""Model files inside unpacked containers (``scan._WorkerState._unpacked``): every
member is judged as a model file in the same pass as its secret scan, exactly once:
by the model walk of the archive that holds it (``modelfiles/`` reads zip, tar, 7z
and compressed members, as deep as members are unpacked), or on its own, named
``outer!/member``, when no walk reads it (a notebook's attachment). Checkpoints are
written by the real ``torch.save`` and ``pickle``, archives by ``zip`` and ``tar``,
notebooks by ``nbformat``."""

from __future__ import annotations

import base64
import io
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat import v4

from keyscope.model import ModelFinding, ScanResult
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("zip", "tar")), reason="needs the zip and tar tools"
)


class _Payload:
    """Unpickling this runs ``os.system``: what a hostile checkpoint does."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo keyscope-test-payload",))


def _evil_pickle() -> bytes:
    return pickle.dumps({"weights": [0.5, 1.5], "hook": _Payload()})


def _evil_checkpoint() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2), "hook": _Payload()}, buf)
    return buf.getvalue()


def _run(cwd: Path, *argv: str) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def _scan(path: Path, **options: object) -> ScanResult:
    chosen: dict[str, object] = {"jobs": 1, "now": NOW, **options}
    return scan([path], ScanOptions(**chosen))  # type: ignore[arg-type]


def _dangerous(result: ScanResult) -> list[ModelFinding]:
    return [m for m in result.model_findings if m.verdict == "executes-code"]


def _notebook(tmp_path: Path, name: str = "train.ipynb") -> Path:
    cell = v4.new_markdown_cell("the weights, attached")
    blob = base64.b64encode(_evil_pickle()).decode()
    cell["attachments"] = {"model.pkl": {"application/octet-stream": blob}}
    path = tmp_path / name
    nbformat.write(v4.new_notebook(cells=[cell]), str(path))
    return path


def test_a_pickle_attached_to_a_notebook_is_judged_with_its_member_path(tmp_path: Path) -> None:
    path = _notebook(tmp_path)
    [found] = _dangerous(_scan(path))
    assert found.path == str(path)
    assert found.where == ("cell 1 attachment model.pkl",)
    assert f"{path}!/cell 1 attachment model.pkl" in found.sentence
    assert "posix.system" in found.sentence or "os.system" in found.sentence


def test_a_notebook_inside_a_zip_is_judged_member_by_member(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    _notebook(tmp_path / "src", "nb.ipynb")
    _run(tmp_path / "src", "zip", "-q", str(tmp_path / "bundle.zip"), "nb.ipynb")
    [found] = _dangerous(_scan(tmp_path / "bundle.zip"))
    assert found.path == str(tmp_path / "bundle.zip")
    assert found.where == ("nb.ipynb", "cell 1 attachment model.pkl")
    assert "bundle.zip!/nb.ipynb!/cell 1 attachment model.pkl" in found.sentence


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_pickle_in_a_tgz_in_a_zip_is_one_finding(tmp_path: Path, jobs: int) -> None:
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "model.pkl").write_bytes(_evil_pickle())
    _run(src, "tar", "-czf", str(tmp_path / "outer.tgz"), "inner")
    _run(tmp_path, "zip", "-q", "release.zip", "outer.tgz")
    result = _scan(tmp_path / "release.zip", jobs=jobs)
    [found] = _dangerous(result)  # the walk of the zip judged it; the member is not again
    assert found.where[0] == "outer.tgz" and found.where[-1] == "inner/model.pkl"
    assert found.path == str(tmp_path / "release.zip")


def test_a_torch_checkpoint_in_a_tar_is_one_finding(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.pt").write_bytes(_evil_checkpoint())
    _run(tmp_path, "tar", "-cf", "models.tar", "ckpt")
    [found] = _dangerous(_scan(tmp_path / "models.tar"))
    assert found.where[0] == "ckpt/model.pt" and found.where[-1].endswith("data.pkl")


def test_archives_nested_past_the_walks_own_depth_are_still_judged(tmp_path: Path) -> None:
    """Six zips deep: the model walk alone stops at four containers; in a scan it
    reaches as deep as members are unpacked, and judges the pickle once."""
    (tmp_path / "model.pkl").write_bytes(_evil_pickle())
    inner = "model.pkl"
    for level in range(6):
        _run(tmp_path, "zip", "-q", f"level{level}.zip", inner)
        inner = f"level{level}.zip"
    result = _scan(tmp_path / inner)
    [found] = _dangerous(result)
    assert found.where == (*(f"level{n}.zip" for n in range(4, -1, -1)), "model.pkl")
    assert not [m for m in result.model_findings if "nested deeper" in m.sentence]
    shallow = _scan(tmp_path / inner, unpack_depth=0)  # no unpacking: the walk's own depth
    assert not _dangerous(shallow)


def test_keyscope_models_alone_does_not_unpack(tmp_path: Path) -> None:
    """``keyscope models`` (no secret scan) keeps to the model walk: it unpacks nothing,
    so the notebook's attachment is not read (a gap the scan command closes)."""
    path = _notebook(tmp_path)
    assert not _dangerous(_scan(path, secrets=False))
    assert _dangerous(_scan(path))


def test_a_pickle_past_the_walks_own_member_limit_is_judged_once(tmp_path: Path) -> None:
    """10 050 members, the pickle last: the model walk alone stops after 10 000; in a
    scan it reads as many members as are unpacked, and judges the pickle once."""
    from keyscope.modelfiles.analyzer import analyze_model
    from keyscope.modelfiles.containers import MAX_MEMBERS

    src = tmp_path / "src"
    src.mkdir()
    for n in range(MAX_MEMBERS + 50):
        (src / f"f{n:05d}.txt").write_text("x")
    (src / "zz-model.pkl").write_bytes(_evil_pickle())
    _run(src, "zip", "-q", "-r", str(tmp_path / "many.zip"), ".", "-x", "zz-model.pkl")
    _run(src, "zip", "-q", "-g", str(tmp_path / "many.zip"), "zz-model.pkl")  # last
    alone = analyze_model("many.zip", (tmp_path / "many.zip").read_bytes())
    assert not [m for m in alone if m.verdict == "executes-code"]
    assert any("members: the rest not scanned" in m.sentence for m in alone)
    result = _scan(tmp_path / "many.zip")
    [found] = _dangerous(result)
    assert found.where == ("zz-model.pkl",)
    assert not [m for m in result.model_findings if "the rest not scanned" in m.sentence]


class _FromBytes:
    """Pickles as ``torch.storage._load_from_bytes(<a checkpoint zip>)``, as a tensor
    pickled with ``pickle.dumps`` is: loading it runs torch.load on those bytes. The
    zip is written by ``zipfile`` in torch's layout (``archive/data.pkl``) without
    torch's zip64 records, as older writers and hand-made checkpoints are."""

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", _evil_pickle())
            z.writestr("archive/version", "3\n")
        return (torch.storage._load_from_bytes, (buf.getvalue(),))


def test_a_checkpoint_a_pickle_holds_as_bytes_is_judged_once(tmp_path: Path) -> None:
    """The zip at the end of such a pickle is unpacked for secrets (a zip behind a
    prefix), but the pickle's own walk already judged it: one finding, no member or
    '(outside members)' judged again."""
    path = tmp_path / "from_bytes.pkl"
    path.write_bytes(pickle.dumps(_FromBytes(), protocol=4))
    result = _scan(path)
    [found] = _dangerous(result)
    assert found.path == str(path) and found.where[-1].endswith("data.pkl")
    assert not [m for m in result.model_findings if "(outside members)" in m.where]
    assert len(result.model_findings) == 2  # the payload, and _load_from_bytes itself (info)
