"""The model walk reads a zip member whole only when its head may be a model file:
a jar's classes are inflated as far as their first bytes, and every model format
(those whose sniff needs more than a head too) is still found inside a zip."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save

from keyscope.model import ModelFinding
from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.containers import SNIFF_BYTES

# os.system("id"), protocol 4
PAYLOAD = (
    b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00"
    b"\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."
)


def _class_file() -> bytes:
    """Bytes shaped like a compiled Java class, longer than the sniffed head."""
    rng = random.Random(7)
    return b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(rng.randrange(256) for _ in range(8192))


def _jar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _zero_crc(data: bytes, name: bytes) -> bytes:
    """``data`` with the central directory's CRC of member ``name`` set to 0."""
    out = bytearray(data)
    cd = out.find(b"PK\x01\x02")
    while out[cd + 46 : cd + 46 + len(name)] != name:
        cd = out.find(b"PK\x01\x02", cd + 1)
    out[cd + 16 : cd + 20] = b"\0\0\0\0"
    return bytes(out)


def _sentences(findings: list[ModelFinding]) -> list[tuple[tuple[str, ...], str]]:
    return [(f.where, f.sentence) for f in findings]


def test_a_member_whose_head_is_no_model_file_is_not_inflated_whole() -> None:
    """A CRC mismatch is only seen by reading a member to its end: the pickle's is
    reported (it is read whole and judged), the class's is not (its first bytes
    showed it holds nothing a loader would run, so the rest was never inflated)."""
    jar = _jar({"com/acme/Main.class": _class_file(), "model/data.bin": PAYLOAD * 40})
    jar = _zero_crc(_zero_crc(jar, b"com/acme/Main.class"), b"model/data.bin")
    with zipfile.ZipFile(io.BytesIO(jar)) as z:  # both CRCs are wrong
        for name in ("com/acme/Main.class", "model/data.bin"):
            assert z.getinfo(name).CRC == 0 and z.getinfo(name).file_size > SNIFF_BYTES
    findings = analyze_model("acme.jar", jar)
    crc = [f.where for f in findings if "CRC mismatch" in f.sentence]
    assert crc == [("model/data.bin",)], _sentences(findings)
    assert any(f.verdict == "executes-code" for f in findings), _sentences(findings)


def test_a_safetensors_member_with_a_header_longer_than_the_head_is_still_checked() -> None:
    """safetensors' sniff compares its header length with the file's: a head of a
    larger file is judged with ``partial`` (the structural check still runs)."""
    tensors = {f"layer{i}.weight": np.zeros(4, np.float32) for i in range(40)}
    data = save(tensors)
    (header_len,) = struct.unpack("<Q", data[:8])
    assert header_len > SNIFF_BYTES
    truncated = data[: 8 + header_len + 16]  # tensors now point past the end
    findings = analyze_model("w.zip", _jar({"weights.safetensors": truncated}))
    assert [f.where for f in findings if "outside the file" in f.sentence] == [
        ("weights.safetensors",)
    ], _sentences(findings)


def test_an_onnx_member_whose_graph_starts_past_the_head_is_still_read() -> None:
    """A long doc string comes before the graph (fields are written in order): the
    head alone does not show an ONNX model, so a member starting like a protobuf
    message is read whole."""
    graph = helper.make_graph(
        [helper.make_node("Backdoor", ["x", "W"], ["y"], name="evil", domain="com.evil.ops")],
        "main",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
        [numpy_helper.from_array(np.ones((4, 4), np.float32), "W")],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.evil.ops", 1)],
        doc_string="x" * (2 * SNIFF_BYTES),
    )
    data = model.SerializeToString()
    assert data.index(b"Backdoor") > SNIFF_BYTES
    onnx.checker.check_model(model)
    findings = analyze_model("m.zip", _jar({"model.onnx": data, "Main.class": _class_file()}))
    assert any(
        f.where[:1] == ("model.onnx",) and "com.evil.ops" in " ".join(f.details)
        for f in findings
    ), _sentences(findings)


def test_the_raw_inflater_reads_members_as_zlib_does() -> None:
    """ISA-L's inflater (used when ``isal`` is installed) gives zlib's bytes and CRC,
    and its errors are among INFLATE_ERRORS."""
    import zlib

    from keyscope.modelfiles.containers import INFLATE_ERRORS, crc32, raw_inflater

    body = _class_file() * 3
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = packer.compress(body) + packer.flush()
    assert raw_inflater().decompress(raw, len(body)) == body
    assert crc32(body) == zlib.crc32(body)
    try:
        raw_inflater().decompress(b"\xff" * 64)
    except INFLATE_ERRORS:
        pass
    else:  # pragma: no cover
        raise AssertionError("corrupt deflate data inflated")
