"""Graph model formats and 7z: ONNX models made with the ``onnx`` package, SavedModel
protos built from TensorFlow's own message classes (as shipped in ``tensorboard``),
TFLite FlatBuffers built with the ``tflite`` schema builders, and 7z archives written
by ``py7zr``. Benign files give no finding; dangerous ones are named with where they
sit. Nothing is loaded or run."""

from __future__ import annotations

import importlib
import io
import json
import random
import sys
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import flatbuffers
import jsonschema
import numpy as np
import onnx
import py7zr
import pytest
import torch
from flatbuffers import flexbuffers
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data
from tensorboard.compat.proto import attr_value_pb2, meta_graph_pb2, node_def_pb2

from keyscope.cli import main
from keyscope.model import ModelFinding
from keyscope.modelfiles import graphs, onnx_graphs, tf_graphs, tflite_graphs
from keyscope.modelfiles.analyzer import analyze_model
from keyscope.modelfiles.containers import sniff
from tests.test_model_files import tar_of

PAYLOAD = "echo keyscope-test-payload"


def verdicts(findings: list[ModelFinding]) -> set[tuple[str, str]]:
    return {(f.severity.label, f.verdict) for f in findings}


def text_of(findings: list[ModelFinding]) -> str:
    return "\n".join(f.sentence for f in findings)


# --- ONNX fixtures ---------------------------------------------------------------------
def _value(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _weights(name: str, value: float = 1.0) -> onnx.TensorProto:
    return numpy_helper.from_array(np.full((4, 4), value, np.float32), name)


def _onnx_model(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    functions: list[onnx.FunctionProto] | None = None,
    extra_opsets: list[onnx.OperatorSetIdProto] | None = None,
    sparse: list[onnx.SparseTensorProto] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "main",
        [_value("x", [4, 4]), _value("cond", [])],
        [_value("y", [4, 4])],
        initializers,
        sparse_initializer=sparse,
    )
    graph.input[1].type.tensor_type.elem_type = TensorProto.BOOL
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), *(extra_opsets or [])],
        functions=functions,
        producer_name="keyscope-tests",
    )


def _if_model(then_init: onnx.TensorProto) -> onnx.ModelProto:
    """MatMul, then an If whose branches each hold an initializer."""
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["h", "tw"], ["t_out"], name="then_add")],
        "then_branch",
        [],
        [_value("t_out", [4, 4])],
        [then_init],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Sub", ["h", "ew"], ["e_out"], name="else_sub")],
        "else_branch",
        [],
        [_value("e_out", [4, 4])],
        [_weights("ew", 2.0)],
    )
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
        helper.make_node(
            "If", ["cond"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph
        ),
    ]
    return _onnx_model(nodes, [_weights("W")])


def test_onnx_with_normal_external_data_is_clean(tmp_path: Path) -> None:
    model = _if_model(_weights("tw", 3.0))
    onnx.checker.check_model(model)
    path = tmp_path / "model.onnx"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    data = path.read_bytes()
    stored = onnx.load(str(path), load_external_data=False)
    assert stored.graph.initializer[0].data_location == TensorProto.EXTERNAL
    assert sniff(data) == "onnx"
    assert analyze_model(str(path), data) == []
    # and with one external file per tensor
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=False,
        size_threshold=0,
    )
    assert analyze_model(str(path), path.read_bytes()) == []


def test_onnx_inline_weights_are_clean() -> None:
    data = _if_model(_weights("tw")).SerializeToString()
    assert sniff(data) == "onnx"
    assert analyze_model("m.onnx", data) == []


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("/etc/passwd", "absolute path"),
        ("../../../../home/user/.ssh/id_rsa", "'..'"),
        ("weights/../../secrets.txt", "'..'"),
        ("..\\..\\Windows\\win.ini", "'..'"),
        ("C:\\Windows\\win.ini", "Windows drive path"),
        ("c:relative-to-drive.bin", "Windows drive path"),
        ("\\\\fileserver\\share\\w.bin", "UNC"),
        ("//fileserver/share/w.bin", "UNC"),
        ("weights.bin\x00../../etc/passwd", "NUL byte"),
    ],
)
def test_onnx_external_data_traversal(location: str, why: str) -> None:
    model = _onnx_model([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], [_weights("W")])
    set_external_data(model.graph.initializer[0], location=location, offset=0, length=64)
    model.graph.initializer[0].ClearField("raw_data")  # the bytes live "elsewhere" now
    findings = analyze_model("evil.onnx", model.SerializeToString())
    assert len(findings) == 1, text_of(findings)
    (f,) = findings
    assert (f.severity.label, f.verdict) == ("high", "anomaly")
    assert f.where == ("graph", "initializer 'W'")
    assert why in f.sentence
    assert "tensor 'W'" in f.sentence and "CVE-2024-27318" in f.sentence
    assert repr(location) in f.sentence


def test_onnx_traversal_inside_a_subgraph() -> None:
    tw = _weights("tw", 3.0)
    set_external_data(tw, location="../../etc/shadow")
    (f,) = analyze_model("m.onnx", _if_model(tw).SerializeToString())
    assert f.where == ("graph", "node 'branch'", "attribute then_branch", "initializer 'tw'")
    assert "../../etc/shadow" in f.sentence


def test_onnx_traversal_in_a_local_function_and_a_constant() -> None:
    secret = _weights("k")
    set_external_data(secret, location="/proc/self/environ")
    const = helper.make_node("Constant", [], ["c"], name="const_in_fn", value=secret)
    fn = helper.make_function(
        "local.fns",
        "AddSecret",
        ["a"],
        ["b"],
        [const, helper.make_node("Add", ["a", "c"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    main_const = helper.make_node("Constant", [], ["c2"], name="top_const", value=_weights("k2"))
    set_external_data(main_const.attribute[0].t, location="../outside.bin")
    nodes = [
        main_const,
        helper.make_node("AddSecret", ["x"], ["y"], name="call", domain="local.fns"),
    ]
    model = _onnx_model(
        nodes, [], functions=[fn], extra_opsets=[helper.make_opsetid("local.fns", 1)]
    )
    findings = analyze_model("m.onnx", model.SerializeToString())
    wheres = {f.where for f in findings}
    assert wheres == {
        ("graph", "node 'top_const'", "attribute value", "tensor 'k2'"),
        ("function local.fns.AddSecret", "node 'const_in_fn'", "attribute value", "tensor 'k'"),
    }, text_of(findings)
    # a node calling a function the model defines is not a custom op
    assert all(f.verdict == "anomaly" for f in findings)


def test_onnx_sparse_initializer_traversal() -> None:
    values = numpy_helper.from_array(np.ones(2, np.float32), "sv")
    set_external_data(values, location="/etc/hosts")
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "si")
    sparse = helper.make_sparse_tensor(values, indices, [4, 4])
    model = _onnx_model(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], [_weights("W")], sparse=[sparse]
    )
    (f,) = analyze_model("m.onnx", model.SerializeToString())
    assert "/etc/hosts" in f.sentence and f.severity.label == "high"


def test_onnx_custom_domains() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h1"], name="mm"),
        helper.make_node("FusedGelu", ["h1"], ["h2"], name="ort_gelu", domain="com.microsoft"),
        helper.make_node(
            "StringRegexReplace", ["h2"], ["h3"], name="ext", domain="ai.onnx.contrib"
        ),
        helper.make_node("Backdoor", ["h3"], ["h4"], name="evil1", domain="com.evil.ops"),
        helper.make_node("Backdoor", ["h4"], ["h5"], name="evil2", domain="com.evil.ops"),
        helper.make_node("Normalizer", ["h5"], ["y"], name="ml", domain="ai.onnx.ml"),
    ]
    opsets = [
        helper.make_opsetid(d, 1)
        for d in ("com.microsoft", "ai.onnx.contrib", "com.evil.ops", "ai.onnx.ml")
    ]
    findings = analyze_model(
        "m.onnx", _onnx_model(nodes, [_weights("W")], extra_opsets=opsets).SerializeToString()
    )
    by_domain = {f.details[0].split("domain ")[1].split("'")[1]: f for f in findings}
    assert set(by_domain) == {"com.microsoft", "ai.onnx.contrib", "com.evil.ops"}
    evil = by_domain["com.evil.ops"]
    assert (evil.severity.label, evil.verdict) == ("medium", "unknown-import")
    assert "2 nodes use op 'Backdoor'" in evil.sentence
    assert evil.where == ("graph", "node 'evil1'")
    assert by_domain["ai.onnx.contrib"].severity.label == "low"
    assert by_domain["com.microsoft"].severity.label == "info"


# --- TensorFlow SavedModel fixtures --------------------------------------------------
def _saved_model_class() -> Any:
    """TensorFlow's SavedModel message (int64 schema version = 1, repeated MetaGraphDef
    = 2), declared against tensorboard's copy of the TF protos, since the SavedModel
    wrapper is the one message tensorboard does not ship."""
    pool = descriptor_pool.Default()
    name = "keyscope_tests.SavedModel"
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto(
        name="keyscope_tests/saved_model.proto",
        package="keyscope_tests",
        syntax="proto3",
        dependency=[meta_graph_pb2.DESCRIPTOR.name],
    )
    msg = fdp.message_type.add(name="SavedModel")
    field = descriptor_pb2.FieldDescriptorProto
    msg.field.add(
        name="saved_model_schema_version",
        number=1,
        type=field.TYPE_INT64,
        label=field.LABEL_OPTIONAL,
    )
    msg.field.add(
        name="meta_graphs",
        number=2,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".tensorboard.MetaGraphDef",
    )
    pool.AddSerializedFile(fdp.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def _node(name: str, op: str, *inputs: str, **attrs: attr_value_pb2.AttrValue) -> Any:
    return node_def_pb2.NodeDef(name=name, op=op, input=list(inputs), attr=attrs)


def _s(text: str) -> attr_value_pb2.AttrValue:
    return attr_value_pb2.AttrValue(s=text.encode())


def _func(name: str) -> attr_value_pb2.AttrValue:
    return attr_value_pb2.AttrValue(func=attr_value_pb2.NameAttrList(name=name))


def _saved_model(
    extra_nodes: tuple[Any, ...] = (),
    extra_serving: tuple[Any, ...] = (),
    assets: tuple[str, ...] = ("vocab.txt",),
) -> bytes:
    """A Keras-style SavedModel: variables, a serving function, and the saver and
    restore functions every SavedModel carries (SaveV2, RestoreV2, MergeV2Checkpoints,
    ShardedFilename, StringJoin)."""
    sm = _saved_model_class()(saved_model_schema_version=1)
    mg = sm.meta_graphs.add()
    mg.meta_info_def.tags.append("serve")
    mg.meta_info_def.tensorflow_version = "2.16.1"
    graph = mg.graph_def
    graph.versions.producer = 1645
    graph.node.extend(
        [
            _node("serving_default_x", "Placeholder"),
            _node("dense/kernel", "VarHandleOp", shared_name=_s("dense/kernel")),
            _node("dense/bias", "VarHandleOp", shared_name=_s("dense/bias")),
            _node("vocab_table", "HashTableV2"),
            _node(
                "StatefulPartitionedCall",
                "StatefulPartitionedCall",
                "serving_default_x",
                "dense/kernel",
                "dense/bias",
                f=_func("__inference_signature_wrapper_120"),
            ),
            _node("saver_filename", "Placeholder"),
            _node(
                "StatefulPartitionedCall_1",
                "StatefulPartitionedCall",
                "saver_filename",
                f=_func("__inference__traced_save_180"),
            ),
            _node(
                "StatefulPartitionedCall_2",
                "StatefulPartitionedCall",
                "saver_filename",
                f=_func("__inference__traced_restore_210"),
            ),
            *extra_nodes,
        ]
    )
    lib = graph.library
    serving = lib.function.add()
    serving.signature.name = "__inference_signature_wrapper_120"
    serving.node_def.extend(
        [
            _node("MatMul/ReadVariableOp", "ReadVariableOp", "kernel"),
            _node("MatMul", "MatMul", "x", "MatMul/ReadVariableOp:value:0"),
            _node("BiasAdd/ReadVariableOp", "ReadVariableOp", "bias"),
            _node("BiasAdd", "BiasAdd", "MatMul:product:0", "BiasAdd/ReadVariableOp:value:0"),
            _node("Relu", "Relu", "BiasAdd:output:0"),
            _node("StringFormat", "StringFormat", "Relu:activations:0"),
            _node("PrintV2", "PrintV2", "StringFormat:output:0", output_stream=_s("stderr")),
            _node("init_table", "InitializeTableFromTextFileV2", "table", "vocab_path"),
            _node("Identity", "Identity", "Relu:activations:0"),
            *extra_serving,
        ]
    )
    save = lib.function.add()
    save.signature.name = "__inference__traced_save_180"
    save.node_def.extend(
        [
            _node("StaticRegexFullMatch", "StaticRegexFullMatch", "file_prefix"),
            _node("Const", "Const"),
            _node("Const_1", "Const"),
            _node("Select", "Select", "StaticRegexFullMatch:output:0", "Const:output:0"),
            _node("StringJoin", "StringJoin", "file_prefix", "Select:output:0"),
            _node("num_shards", "Const"),
            _node("ShardedFilename/shard", "Const"),
            _node("ShardedFilename", "ShardedFilename", "StringJoin:output:0"),
            _node("SaveV2/tensor_names", "Const"),
            _node("SaveV2/shape_and_slices", "Const"),
            _node("SaveV2", "SaveV2", "ShardedFilename:filename:0", "SaveV2/tensor_names"),
            _node("MergeV2Checkpoints", "MergeV2Checkpoints", "ShardedFilename:filename:0"),
            _node("Identity", "Identity", "file_prefix"),
            _node("NoOp", "NoOp"),
        ]
    )
    restore = lib.function.add()
    restore.signature.name = "__inference__traced_restore_210"
    restore.node_def.extend(
        [
            _node("RestoreV2/tensor_names", "Const"),
            _node("RestoreV2", "RestoreV2", "file_prefix", "RestoreV2/tensor_names"),
            _node("AssignVariableOp", "AssignVariableOp", "kernel", "RestoreV2:tensors:0"),
            _node("AssignVariableOp_1", "AssignVariableOp", "bias", "RestoreV2:tensors:1"),
            _node("NoOp", "NoOp"),
            _node("Identity", "Identity", "file_prefix"),
        ]
    )
    for i, filename in enumerate(assets):
        asset = mg.asset_file_def.add()
        asset.tensor_info.name = f"asset_path_initializer_{i}:0"
        asset.filename = filename
    mg.signature_def["serving_default"].method_name = "tensorflow/serving/predict"
    data: bytes = sm.SerializeToString()
    return data


def test_savedmodel_with_a_saver_is_clean() -> None:
    data = _saved_model()
    assert sniff(data) == "savedmodel"
    assert analyze_model("saved_model.pb", data) == []


def test_savedmodel_side_effect_ops_are_named() -> None:
    data = _saved_model(
        extra_nodes=(
            _node("exfil/ReadFile", "ReadFile", "exfil/path"),
            _node("drop/WriteFile", "WriteFile", "drop/path", "drop/contents"),
            _node("mmap", "ImmutableConst", memory_region_name=_s("/etc/passwd")),
            _node("own", "ImmutableConst", memory_region_name=_s("memmapped_package://w")),
        ),
        extra_serving=(
            _node("callback", "EagerPyFunc", "Relu:activations:0", token=_s("pyfunc_0")),
            _node(
                "log",
                "PrintV2",
                "StringFormat:output:0",
                output_stream=_s("file:///home/user/.bashrc"),
            ),
            _node("tfdata", "DataServiceDatasetV4", "id", "mode", "address"),
        ),
    )
    findings = analyze_model("saved_model.pb", data)
    got = {(f.where[-1], f.severity.label) for f in findings}
    assert got == {
        ("node 'exfil/ReadFile'", "high"),
        ("node 'drop/WriteFile'", "critical"),
        ("node 'mmap'", "high"),
        ("node 'callback'", "critical"),
        ("node 'log'", "critical"),
        ("node 'tfdata'", "high"),
    }, text_of(findings)
    assert {f.verdict for f in findings} == {"executes-code"}
    callback = next(f for f in findings if f.where[-1] == "node 'callback'")
    assert callback.where == (
        "meta graph 0 [serve]",
        "function __inference_signature_wrapper_120",
        "node 'callback'",
    )
    assert "EagerPyFunc" in callback.sentence and "Python" in callback.sentence
    log = next(f for f in findings if f.where[-1] == "node 'log'")
    assert "/home/user/.bashrc" in log.sentence
    mmap = next(f for f in findings if f.where[-1] == "node 'mmap'")
    assert "memory-maps the file '/etc/passwd'" in mmap.sentence


def test_savedmodel_traced_copies_are_one_finding() -> None:
    """tf.saved_model.save writes one function per traced input signature: the same
    ReadFile node in two copies is one finding that names the other copy."""
    sm = _saved_model_class()()
    sm.ParseFromString(_saved_model())
    lib = sm.meta_graphs[0].graph_def.library
    for name in ("__inference_fn_153", "__inference_fn_173"):
        fn = lib.function.add()
        fn.signature.name = name
        fn.node_def.extend([_node("ReadFile", "ReadFile", "path")])
    (f,) = analyze_model("saved_model.pb", sm.SerializeToString())
    assert f.where[-2:] == ("function __inference_fn_153", "node 'ReadFile'")
    assert "1 more traced copies: function __inference_fn_173" in f.sentence


def test_savedmodel_text_format() -> None:
    """saved_model.pbtxt (TF reads it when saved_model.pb is absent), written by
    protobuf's own text_format from the same messages."""
    from google.protobuf import text_format

    sm = _saved_model_class()()
    sm.ParseFromString(_saved_model())
    benign = text_format.MessageToString(sm).encode()
    assert sniff(benign) == "savedmodel-text"
    assert analyze_model("saved_model.pbtxt", benign) == []
    sm.ParseFromString(
        _saved_model(
            extra_nodes=(_node("drop/WriteFile", "WriteFile", "drop/path", "drop/contents"),),
            extra_serving=(
                _node("log", "PrintV2", "s", output_stream=_s("file:///home/u/.bashrc")),
            ),
        )
    )
    evil = text_format.MessageToString(sm).encode()
    found = {f.where: f for f in analyze_model("saved_model.pbtxt", evil)}
    assert set(found) == {
        ("text graph", "node 'drop/WriteFile'"),
        ("text graph", "function __inference_signature_wrapper_120", "node 'log'"),
    }
    assert "/home/u/.bashrc" in found[
        ("text graph", "function __inference_signature_wrapper_120", "node 'log'")
    ].sentence
    assert sniff(b"# notes\nmeta_graphs are what TF saves\n") == "savedmodel-text"
    assert analyze_model("notes.txt", b"# notes\nmeta_graphs are what TF saves\n") == []


def test_savedmodel_asset_outside_the_model() -> None:
    (f,) = analyze_model("saved_model.pb", _saved_model(assets=("../../../../etc/passwd",)))
    assert (f.severity.label, f.verdict) == ("high", "anomaly")
    assert "../../../../etc/passwd" in f.sentence


def test_many_side_effect_nodes_are_summed_up() -> None:
    nodes = tuple(_node(f"read_{i}", "ReadFile", "p") for i in range(30))
    findings = analyze_model("saved_model.pb", _saved_model(extra_nodes=nodes))
    assert len(findings) == graphs.MAX_PER_KIND + 1
    assert "10 more places" in findings[-1].sentence


def _fingerprint_like() -> bytes:
    # fingerprint.pb beside saved_model.pb: five uint64 varints and a VersionDef.
    out = b""
    for number in range(1, 6):
        out += bytes([number << 3]) + b"\xb5\xe3\xc4\x9c\xa8\xf1\x86\x8b\x16"
    return out + b"\x32\x02\x08\x01"


@pytest.mark.parametrize(
    "data",
    [
        _fingerprint_like(),
        b"\x08\x01\x12\x05hello world",  # a length that does not fit
        b"\x08\x01\x12\x02\x08\x01",  # a meta graph that is not a MetaGraphDef
        b"\x08\x01\x12\x00",
        b"\x08\x01\x12\x00\x12\x02\x0a\x00",  # an empty meta graph first
        b"\x08\x01" + b"\x00" * 64,
        b"\x08" + bytes(range(256)) * 4,
        node_def_pb2.NodeDef(name="x", op="ReadFile").SerializeToString(),  # a bare proto
        b"\x08 plain text after a backspace\n" * 20,
    ],
)
def test_protobuf_sniffing_rejects_lookalikes(data: bytes) -> None:
    assert sniff(data) not in ("savedmodel", "onnx")


def test_onnx_and_savedmodel_are_told_apart() -> None:
    onnx_bytes = _if_model(_weights("tw")).SerializeToString()
    model = onnx.ModelProto()
    model.ParseFromString(onnx_bytes)
    model.ir_version = 1  # an ONNX model that also opens with 08 01 12
    old = model.SerializeToString()
    assert old[:3] == b"\x08\x01\x12"
    assert sniff(old) == "onnx"
    assert sniff(_saved_model()) == "savedmodel"
    assert sniff(onnx_bytes[: len(onnx_bytes) // 2]) is None  # truncated: not claimed


def test_heads_of_big_files_sniff_with_partial() -> None:
    # scan.py decides from a file's first 512 bytes whether a file over the size limit
    # is a model; the protobuf formats need partial=True for that.
    big_onnx = _onnx_model(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        [numpy_helper.from_array(np.ones((64, 64), np.float32), "W")],
    ).SerializeToString()
    big_saved = _saved_model(extra_nodes=tuple(_node(f"n{i}", "NoOp") for i in range(50)))
    big_tflite = tflite_model([(ADD, None)] * 40, [(0, b"")] * 40)
    for data, kind in ((big_onnx, "onnx"), (big_saved, "savedmodel"), (big_tflite, "tflite")):
        assert len(data) > 1024
        assert sniff(data) == kind
        assert sniff(data[:512]) is None or kind == "tflite"
        assert sniff(data[:512], partial=True) == kind
    for other in (_fingerprint_like(), b"\x08" + bytes(range(256)) * 4, b"\x08\x01" + b"\0" * 510):
        assert sniff(other[:512], partial=True) is None


# --- TFLite fixtures ------------------------------------------------------------------
def _schema(name: str) -> ModuleType:
    # tflite's package namespace re-exports the classes; the builders live in modules.
    return importlib.import_module(f"tflite.{name}")


def flex_options(op: str, node_def: bytes) -> bytes:
    """Custom options as the TFLite converter writes them for a Flex op: a FlexBuffer
    vector [op name, serialized NodeDef]."""
    fbb = flexbuffers.Builder()
    with fbb.Vector():
        fbb.String(op)
        fbb.String(node_def.decode("ascii"))
    return bytes(fbb.Finish())


def _node_def(op: str, **attrs: attr_value_pb2.AttrValue) -> bytes:
    data: bytes = _node(f"{op.lower()}_node", op, **attrs).SerializeToString()
    return data


def tflite_model(codes: list[tuple[int, str | None]], operators: list[tuple[int, bytes]]) -> bytes:
    """A TFLite model: operator codes (builtin code, custom code) and one subgraph
    whose operators are (opcode index, custom options)."""
    opcode, operator, subgraph, model = (
        _schema(n) for n in ("OperatorCode", "Operator", "SubGraph", "Model")
    )
    tensor, buffer = _schema("Tensor"), _schema("Buffer")
    b = flatbuffers.Builder(1024)
    code_offsets = []
    for builtin, custom in codes:
        custom_offset = b.CreateString(custom) if custom else None
        opcode.Start(b)
        opcode.AddDeprecatedBuiltinCode(b, min(builtin, 127))
        if custom_offset is not None:
            opcode.AddCustomCode(b, custom_offset)
        opcode.AddBuiltinCode(b, builtin)
        opcode.AddVersion(b, 1)
        code_offsets.append(opcode.End(b))
    op_offsets = []
    for index, options in operators:
        options_offset = b.CreateByteVector(options) if options else None
        inputs = b.CreateNumpyVector(np.array([0], np.int32))
        outputs = b.CreateNumpyVector(np.array([0], np.int32))
        operator.Start(b)
        operator.AddOpcodeIndex(b, index)
        operator.AddInputs(b, inputs)
        operator.AddOutputs(b, outputs)
        if options_offset is not None:
            operator.AddCustomOptions(b, options_offset)
        op_offsets.append(operator.End(b))
    tensor_name = b.CreateString("t0")
    shape = b.CreateNumpyVector(np.array([1, 4], np.int32))
    tensor.Start(b)
    tensor.AddShape(b, shape)
    tensor.AddName(b, tensor_name)
    tensor.AddBuffer(b, 0)
    t0 = tensor.End(b)

    def vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return int(b.EndVector())

    codes_vec = vector(code_offsets)
    ops_vec = vector(op_offsets)
    tensors_vec = vector([t0])
    io_vec = b.CreateNumpyVector(np.array([0], np.int32))
    name = b.CreateString("main")
    subgraph.Start(b)
    subgraph.AddTensors(b, tensors_vec)
    subgraph.AddInputs(b, io_vec)
    subgraph.AddOutputs(b, io_vec)
    subgraph.AddOperators(b, ops_vec)
    subgraph.AddName(b, name)
    sg = subgraph.End(b)
    subgraphs_vec = vector([sg])
    buffer.Start(b)
    empty = buffer.End(b)
    buffers_vec = vector([empty])
    description = b.CreateString("keyscope test model")
    model.Start(b)
    model.AddVersion(b, 3)
    model.AddOperatorCodes(b, codes_vec)
    model.AddSubgraphs(b, subgraphs_vec)
    model.AddDescription(b, description)
    model.AddBuffers(b, buffers_vec)
    b.Finish(model.End(b), file_identifier=b"TFL3")
    data = bytes(b.Output())
    parsed = importlib.import_module("tflite").Model.GetRootAs(data, 0)  # the real reader
    assert parsed.OperatorCodesLength() == len(codes)
    assert parsed.Subgraphs(0).OperatorsLength() == len(operators)
    return data


ADD, CUSTOM = 0, 32


def test_tflite_benign_model_is_clean() -> None:
    data = tflite_model(
        [(ADD, None), (CUSTOM, "TFLite_Detection_PostProcess"), (CUSTOM, "FlexRFFT")],
        [(0, b""), (1, b"\x00"), (2, flex_options("RFFT", _node_def("RFFT")))],
    )
    assert sniff(data) == "tflite"
    assert analyze_model("m.tflite", data) == []


def test_tflite_flex_side_effect_ops() -> None:
    data = tflite_model(
        [
            (ADD, None),
            (CUSTOM, "FlexWriteFile"),
            (CUSTOM, "FlexReadFile"),
            (CUSTOM, "FlexEagerPyFunc"),
            (CUSTOM, "MyVendorOp"),
        ],
        [
            (0, b""),
            (1, flex_options("WriteFile", _node_def("WriteFile"))),
            (2, flex_options("ReadFile", _node_def("ReadFile"))),
            (3, flex_options("EagerPyFunc", _node_def("EagerPyFunc", token=_s("t")))),
            (4, b""),
        ],
    )
    findings = analyze_model("m.tflite", data)
    got = {(f.where, f.severity.label, f.verdict) for f in findings}
    assert got == {
        (("operator code 1",), "critical", "executes-code"),
        (("operator code 2",), "high", "executes-code"),
        (("operator code 3",), "critical", "executes-code"),
        (("operator code 4",), "low", "unknown-import"),
    }, text_of(findings)
    assert "FlexWriteFile" in text_of(findings) and "'MyVendorOp'" in text_of(findings)


def test_tflite_flex_op_disguised_by_its_options() -> None:
    # The operator code says FlexIdentity; the delegate runs what the options name.
    data = tflite_model(
        [(CUSTOM, "FlexIdentity"), (CUSTOM, "FlexPrintV2")],
        [
            (0, flex_options("WriteFile", _node_def("WriteFile"))),
            (
                1,
                flex_options(
                    "PrintV2", _node_def("PrintV2", output_stream=_s("file:///home/user/.profile"))
                ),
            ),
        ],
    )
    findings = analyze_model("m.tflite", data)
    got = {(f.where, f.severity.label, f.verdict) for f in findings}
    assert got == {
        (("subgraph 0 'main'", "operator 0"), "high", "anomaly"),
        (("subgraph 0 'main'", "operator 0"), "critical", "executes-code"),
        (("subgraph 0 'main'", "operator 1"), "critical", "executes-code"),
    }, text_of(findings)
    assert "declares Identity" in text_of(findings)
    assert "/home/user/.profile" in text_of(findings)


# --- 7z and nesting ---------------------------------------------------------------
def _evil_pickle() -> bytes:
    def u(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    return b"\x80\x04" + u("os") + u("system") + b"\x93" + u(PAYLOAD) + b"\x85R."


def seven_zip(members: dict[str, bytes], password: str | None = None) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password=password) as archive:
        for name, body in members.items():
            archive.writestr(body, name)
    return buf.getvalue()


def _torch_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3, 3), "step": 5}, buf)
    return buf.getvalue()


def test_benign_7z_is_clean() -> None:
    data = seven_zip({"model/pytorch_model.bin": _torch_bytes(), "README.md": b"# tiny\n"})
    assert sniff(data) == "7z"
    assert analyze_model("model.7z", data) == []


def test_pickle_payload_in_7z() -> None:
    data = seven_zip({"README.md": b"hi", "model/data.pkl": _evil_pickle()})
    (f,) = analyze_model("model.7z", data)
    assert (f.severity.label, f.verdict) == ("critical", "executes-code")
    assert f.where == ("model/data.pkl",)
    assert "os.system" in f.sentence


def test_7z_bomb_is_refused_before_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyscope.modelfiles import containers

    monkeypatch.setattr(containers, "RATIO_FLOOR", 1_000_000)  # keep the fixture small
    data = seven_zip({"zeros.bin": b"\0" * 3_000_000})
    assert len(data) * 200 < 3_000_000
    (f,) = analyze_model("bomb.7z", data)
    assert f.verdict == "anomaly" and "bomb" in f.sentence


def test_encrypted_7z_is_reported_not_scanned() -> None:
    data = seven_zip({"data.pkl": _evil_pickle()}, password="secret")
    (f,) = analyze_model("locked.7z", data)
    assert (f.severity.label, f.verdict) == ("low", "anomaly")
    assert "not scanned" in f.sentence


def test_7z_without_py7zr(monkeypatch: pytest.MonkeyPatch) -> None:
    data = seven_zip({"data.pkl": _evil_pickle()})
    monkeypatch.setitem(sys.modules, "py7zr", None)  # what an install without it sees
    (f,) = analyze_model("m.7z", data)
    assert (f.severity.label, f.verdict) == ("low", "anomaly")
    assert "py7zr is not installed" in f.sentence


def test_graph_models_inside_archives_are_checked() -> None:
    evil_onnx = _onnx_model(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], [_weights("W")]
    )
    set_external_data(evil_onnx.graph.initializer[0], location="/etc/passwd")
    saved = _saved_model(extra_nodes=(_node("r", "ReadFile", "p"),))
    tf_tar = tar_of({"export/saved_model.pb": saved})
    data = seven_zip({"onnx/model.onnx": evil_onnx.SerializeToString(), "tf.tar": tf_tar})
    findings = analyze_model("bundle.7z", data)
    wheres = {f.where for f in findings}
    assert wheres == {
        ("onnx/model.onnx", "graph", "initializer 'W'"),
        ("tf.tar", "export/saved_model.pb", "meta graph 0 [serve]", "node 'r'"),
    }, text_of(findings)


def test_keras_archive_inside_7z_is_checked() -> None:
    import zipfile

    config = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "Lambda", "module": "keras.layers", "config": {}}]},
    }
    keras = io.BytesIO()
    with zipfile.ZipFile(keras, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
    (f,) = analyze_model("m.7z", seven_zip({"model.keras": keras.getvalue()}))
    assert (f.severity.label, f.verdict) == ("critical", "executes-code")
    assert f.where == ("model.keras", "config.json")


def test_7z_member_names_that_escape() -> None:
    from keyscope.modelfiles.containers import escapes

    assert [
        escapes(n) for n in ("a/b.pkl", "a..b/c", "../x", "a/../../x", "/etc/x", "C:\\x", "..\\x")
    ] == [False, False, True, True, True, True, True]


# --- the command line ----------------------------------------------------------------
def test_cli_reports_graph_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good"
    good.mkdir()
    onnx.save_model(
        _if_model(_weights("tw")),
        str(good / "model.onnx"),
        save_as_external_data=True,
        size_threshold=0,
    )
    (good / "saved_model.pb").write_bytes(_saved_model())
    (good / "m.tflite").write_bytes(tflite_model([(ADD, None)], [(0, b"")]))
    (good / "m.7z").write_bytes(seven_zip({"ckpt.pt": _torch_bytes()}))
    assert main(["models", "-j", "1", str(good)]) == 0
    capsys.readouterr()

    bad = tmp_path / "bad"
    bad.mkdir()
    evil = _onnx_model([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], [_weights("W")])
    set_external_data(evil.graph.initializer[0], location="../../../etc/passwd")
    (bad / "evil.onnx").write_bytes(evil.SerializeToString())
    (bad / "saved_model.pb").write_bytes(
        _saved_model(extra_nodes=(_node("drop", "WriteFile", "p", "c"),))
    )
    (bad / "evil.tflite").write_bytes(
        tflite_model(
            [(CUSTOM, "FlexReadFile")], [(0, flex_options("ReadFile", _node_def("ReadFile")))]
        )
    )
    (bad / "evil.7z").write_bytes(seven_zip({"data.pkl": _evil_pickle()}))
    assert main(["models", "-j", "1", "--format", "json", str(bad)]) == 1
    doc = json.loads(capsys.readouterr().out)
    found = {(Path(m["path"]).name, m["verdict"]) for m in doc["model_findings"]}
    assert found == {
        ("evil.onnx", "anomaly"),
        ("saved_model.pb", "executes-code"),
        ("evil.tflite", "executes-code"),
        ("evil.7z", "executes-code"),
    }
    assert main(["scan", "-j", "1", "--format", "json", str(bad)]) == 1
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(files("keyscope").joinpath("schemas/scan-v1.json").read_text())
    jsonschema.validate(doc, schema)
    assert len(doc["model_findings"]) == 4
    assert main(["scan", "-j", "1", "--format", "sarif", str(bad)]) == 1
    sarif = capsys.readouterr().out
    assert '"ruleId": "model-executes-code"' in sarif and '"ruleId": "model-anomaly"' in sarif
    assert main(["models", "-j", "1", str(bad)]) == 1
    text = capsys.readouterr().out
    assert "WriteFile" in text and "../../../etc/passwd" in text and "FlexReadFile" in text
    # Files over --max-file-size are still judged (memory-mapped, models only).
    assert main(["models", "-j", "1", "--format", "json", "--max-file-size", "64", str(bad)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {(Path(m["path"]).name, m["verdict"]) for m in doc["model_findings"]} == found
    assert all("larger than --max-file-size" in s["reason"] for s in doc["skipped"])


def test_memory_mapped_files_are_released(tmp_path: Path) -> None:
    # scan.py judges big files through a memory map, which must close afterwards.
    import mmap

    broken_onnx = bytearray(FIXTURES[0])
    broken_onnx[broken_onnx.index(b"\x3a") + 3] = 0x07  # a group wire type in the graph
    for i, data in enumerate([*FIXTURES, bytes(broken_onnx), FIXTURES[2][:-40]]):
        path = tmp_path / f"f{i}"
        path.write_bytes(data)
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert sniff(mm) is not None  # type: ignore[arg-type]
            analyze_model(str(path), mm)  # type: ignore[arg-type]


# --- hostile input -------------------------------------------------------------------
def _fixtures() -> list[bytes]:
    tw = _weights("tw")
    set_external_data(tw, location="../x")
    return [
        _if_model(tw).SerializeToString(),
        _saved_model(
            extra_nodes=(_node("r", "ReadFile", "p"),),
            extra_serving=(_node("log", "PrintV2", "s", output_stream=_s("file:///tmp/x")),),
        ),
        tflite_model(
            [(ADD, None), (CUSTOM, "FlexIdentity"), (CUSTOM, "Other")],
            [(0, b""), (1, flex_options("WriteFile", _node_def("WriteFile"))), (2, b"")],
        ),
        seven_zip({"a/data.pkl": _evil_pickle(), "b.txt": b"x" * 50}),
    ]


FIXTURES = _fixtures()


def _mutate(base: bytes, rng: random.Random, edits: int) -> bytes:
    data = bytearray(base)
    for _ in range(edits):
        if not data:
            break
        i = rng.randrange(len(data))
        op = rng.choice(("flip", "byte", "del", "ins", "cut", "dup"))
        if op == "flip":
            data[i] ^= 1 << rng.randrange(8)
        elif op == "byte":
            data[i] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == "del":
            del data[i : i + rng.randint(1, 8)]
        elif op == "ins":
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == "cut":
            del data[i:]
        else:
            j = rng.randrange(len(data))
            data[i:i] = data[j : j + rng.randint(1, 64)]
    return bytes(data)


@pytest.mark.parametrize("index", range(len(FIXTURES)))
def test_mutated_graph_files_never_raise(index: int) -> None:
    rng = random.Random(1000 + index)
    base = FIXTURES[index]
    for _ in range(250):
        for f in analyze_model("fuzz.bin", _mutate(base, rng, rng.randint(1, 6))):
            assert f.verdict in {
                "executes-code",
                "unknown-import",
                "library-class",
                "inconclusive",
                "anomaly",
            }
    for cut in range(0, len(base), max(1, len(base) // 200)):
        analyze_model("cut.bin", base[:cut])


PARSERS = [onnx_graphs.onnx_issues, tf_graphs.saved_model_issues, tflite_graphs.tflite_issues]


@pytest.mark.parametrize("index", range(len(PARSERS)))
def test_parsers_take_any_mutation(index: int) -> None:
    # Most mutations no longer sniff as the format; call each parser directly so the
    # damage reaches deep into the messages and tables.
    rng = random.Random(2000 + index)
    parse, base = PARSERS[index], FIXTURES[index]
    outcomes = set()
    for _ in range(400):
        issues = parse(_mutate(base, rng, rng.randint(1, 4)))
        outcomes.update(i.verdict for i in issues)
    assert "inconclusive" in outcomes and outcomes - {"inconclusive"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(FIXTURES))), st.binary(max_size=64), st.integers(0, 10_000))
def test_spliced_graph_files_never_raise(index: int, junk: bytes, at: int) -> None:
    base = FIXTURES[index]
    at %= len(base)
    analyze_model("splice.bin", base[:at] + junk + base[at + len(junk) :])


def test_truncated_onnx_is_inconclusive_not_clean() -> None:
    data = _if_model(_weights("tw")).SerializeToString()
    # keep the top level intact but break the graph's content
    broken = bytearray(data)
    graph_at = broken.index(b"\x3a")  # field 7, length-delimited
    broken[graph_at + 3] = 0x07  # a group wire type inside the graph
    findings = onnx_graphs.onnx_issues(bytes(broken))
    assert findings and findings[-1].verdict == "inconclusive"


def test_field_budget_stops_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tf_graphs, "MAX_FIELDS", 40)  # the budget a reader starts with
    findings = analyze_model("saved_model.pb", _saved_model())
    assert [(f.severity.label, f.verdict) for f in findings] == [("low", "inconclusive")]
    assert "too large" in findings[0].sentence


def _ld(field: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand."""
    size, length = len(payload), b""
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    return bytes([field << 3 | 2]) + length + payload


def test_deeply_nested_subgraphs_stop_at_the_depth_limit() -> None:
    # Deeper than protobuf's own parsers accept, so written by hand: GraphProto >
    # NodeProto (If) > AttributeProto (then_branch) > GraphProto > …
    graph = _ld(1, _ld(3, b"leaf") + _ld(4, b"Identity"))
    for depth in range(onnx_graphs.MAX_GRAPH_DEPTH + 5):
        attribute = _ld(1, b"then_branch") + _ld(6, graph)
        graph = _ld(1, _ld(3, f"if{depth}".encode()) + _ld(4, b"If") + _ld(5, attribute))
    data = b"\x08\x08" + _ld(7, graph)
    assert sniff(data) == "onnx"
    findings = analyze_model("deep.onnx", data)
    assert [(f.severity.label, f.verdict) for f in findings] == [("low", "inconclusive")]
    assert "nested deeper" in findings[0].sentence


def test_tflite_with_lying_vector_lengths() -> None:
    data = bytearray(
        tflite_model(
            [(ADD, None), (CUSTOM, "FlexIdentity")],
            [(1, flex_options("Identity", _node_def("Identity")))],
        )
    )
    # every 32-bit little-endian value 1..4 (vector lengths among them) becomes huge
    for i in range(8, len(data) - 4, 4):
        if data[i + 1 : i + 4] == b"\0\0\0" and 1 <= data[i] <= 4:
            data[i : i + 4] = b"\xff\xff\xff\x7f"
    findings = analyze_model("m.tflite", bytes(data))
    assert all(f.severity.label in ("low", "high", "critical") for f in findings)
