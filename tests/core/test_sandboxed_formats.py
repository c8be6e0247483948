"""GGUF, HDF5 and ONNX: indexed in a limited child process; hostile files fail cleanly there."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.core.formats import index_file, sandbox
from modelmanager.errors import FormatError
from tests.support.builders import write_gguf
from tests.support.hostile_headers import gguf_many_keys, gguf_raw, gguf_vocabulary


def _index(path: Path):  # type: ignore[no-untyped-def]
    return index_file(path, path.stat().st_size)


def _gguf(path: Path) -> Path:
    gguf = pytest.importorskip("gguf")

    def more(w: Any) -> None:
        w.add_context_length(128)
        q4 = np.random.default_rng(1).integers(0, 255, size=(2, 144), dtype=np.uint8)
        w.add_tensor("blk.0.ffn.weight", q4, raw_dtype=gguf.GGMLQuantizationType.Q4_K)

    return write_gguf(path, more)


def test_gguf_tensors_including_quantized_ones_and_metadata(tmp_path: Path) -> None:
    index = _index(_gguf(tmp_path / "m.gguf"))
    by_name = {t.name: t for t in index.tensors}
    assert (by_name["token_embd.weight"].dtype, by_name["token_embd.weight"].shape) == (
        "F32",
        (8, 32),
    )
    assert (by_name["blk.0.attn_q.weight"].dtype, by_name["blk.0.attn_q.weight"].shape) == (
        "Q8_0",
        (4, 32),
    )
    assert by_name["blk.0.attn_q.weight"].nbytes == 4 * 34  # 32-element blocks of 34 bytes
    assert (by_name["blk.0.ffn.weight"].dtype, by_name["blk.0.ffn.weight"].nbytes) == ("Q4_K", 288)
    raw = (tmp_path / "m.gguf").read_bytes()
    t = by_name["token_embd.weight"]
    assert raw[t.start : t.end] == np.arange(256, dtype=np.float32).tobytes()
    assert index.metadata["general.name"] == "tiny"
    blocks = json.loads(index.metadata["gguf.block_sizes"])
    assert blocks["Q8_0"] == "32 elements in 34 bytes"
    assert blocks["Q4_K"] == "256 elements in 144 bytes"
    assert index.metadata["llama.context_length"] == "128"


def _gguf_header(tensors: int, kvs: int, extra: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs) + extra


@pytest.mark.parametrize(
    ("why", "blob"),
    [
        ("absurd tensor count", _gguf_header(1 << 60, 0)),
        ("absurd string length", _gguf_header(0, 1, struct.pack("<Q", 1 << 60) + b"key")),
        ("truncated", _gguf_header(2, 2)[:-3]),
    ],
)
def test_hostile_gguf_fails_in_the_child_not_the_app(tmp_path: Path, why: str, blob: bytes) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(FormatError) as info:
        _index(path)
    assert str(path) in str(info.value)


def test_hdf5_datasets_and_attributes(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as h:
        h.attrs["keras_version"] = "3.5.0"
        h.attrs["backend"] = "tensorflow"
        layer = h.create_group("model_weights/dense")
        layer.create_dataset("kernel", data=np.arange(12, dtype=np.float32).reshape(4, 3))
        layer.create_dataset("bias", data=np.zeros(3, np.float64), chunks=(3,))
        h.create_dataset("labels", data=np.array([b"a", b"b"]))  # strings: not a tensor
    index = _index(path)
    by_name = {t.name: t for t in index.tensors}
    assert set(by_name) == {"model_weights/dense/kernel", "model_weights/dense/bias"}
    kernel = by_name["model_weights/dense/kernel"]
    assert (kernel.dtype, kernel.shape) == ("F32", (4, 3))
    assert path.read_bytes()[kernel.start : kernel.end] == np.arange(12, dtype=np.float32).tobytes()
    assert index.metadata["keras_version"] == "3.5.0"


def test_damaged_hdf5_fails_cleanly(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    path = tmp_path / "bad.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(FormatError, match="hdf5"):
        _index(path)


def _onnx_model(path: Path, external: bool = False) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), name="W")
    bias = numpy_helper.from_array(np.ones(64, dtype=np.float16), name="B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 64])],
        initializer=[weight, bias],
    )  # fmt: skip
    model = helper.make_model(graph, producer_name="modelmanager-test")
    if external:
        onnx.save(model, str(path), save_as_external_data=True, location="weights.data",
                  size_threshold=1024)  # fmt: skip
    else:
        onnx.save(model, str(path))
    return path


def test_onnx_initializers_with_byte_ranges_and_opset(tmp_path: Path) -> None:
    path = _onnx_model(tmp_path / "m.onnx")
    index = _index(path)
    by_name = {t.name: t for t in index.tensors}
    assert (by_name["W"].dtype, by_name["W"].shape) == ("F32", (64, 64))
    assert (by_name["B"].dtype, by_name["B"].shape) == ("F16", (64,))
    raw = path.read_bytes()
    assert raw[by_name["W"].start : by_name["W"].end] == np.arange(4096, dtype=np.float32).tobytes()
    assert index.metadata["producer"] == "modelmanager-test"
    assert index.metadata["opset"].startswith("ai.onnx:")


def test_onnx_with_external_data_lists_the_external_tensors(tmp_path: Path) -> None:
    path = _onnx_model(tmp_path / "m.onnx", external=True)
    assert (tmp_path / "weights.data").exists()
    by_name = {t.name: t for t in _index(path).tensors}
    assert by_name["W"].shape == (64, 64)
    assert by_name["W"].nbytes == 0  # its bytes live in weights.data, stored as its own file


@pytest.mark.parametrize(
    ("why", "blob"),
    [("not protobuf", b"\xff" * 64), ("length past the end", b"\x3a\xff\xff\xff\xff\x0f")],
)
def test_damaged_onnx_fails_cleanly(tmp_path: Path, why: str, blob: bytes) -> None:
    pytest.importorskip("onnx")
    path = tmp_path / "bad.onnx"
    path.write_bytes(blob)
    with pytest.raises(FormatError) as info:
        _index(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("why", "tensors", "data"),
    [
        ("sharing one data offset", [(b"a", [4], 0, 0), (b"b", [4], 0, 0)], b"\0" * 16),
        ("overlapping", [(b"a", [8], 0, 0), (b"b", [4], 0, 16)], b"\0" * 32),
    ],
)
def test_gguf_tensors_sharing_bytes_are_refused(
    tmp_path: Path, why: str, tensors: list[tuple[bytes, list[int], int, int]], data: bytes
) -> None:
    """llama.cpp requires each tensor at its own offset; so do we (the chunk planner too)."""
    pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_raw(tensors, data))
    with pytest.raises(FormatError, match="overlaps tensor 'a'"):
        _index(path)


def test_gguf_with_thousands_of_metadata_keys_is_indexed_with_a_bounded_metadata(
    tmp_path: Path,
) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    gguf_many_keys(path)
    index = _index(path)
    assert [t.name for t in index.tensors] == ["w"]
    assert len(index.metadata) <= sandbox.MAX_META_KEYS + 1  # + gguf.block_sizes
    assert index.metadata["test.key.0"] == "value 0"


# (why, the child's answer, a word of the error): the child is trusted no more than the file.
ANSWERS: list[tuple[str, object, str]] = [
    ("not an object", [1, 2], "malformed answer"),
    ("tensors not a list", {"tensors": 5}, "malformed tensor list"),
    ("record of four fields", {"tensors": [["w", "F32", [1], 0]]}, "malformed tensor record"),
    ("record not a list", {"tensors": ["w"]}, "malformed tensor record"),
    ("float shape", {"tensors": [["w", "F32", [4.0], 0, 16]]}, "non-integer"),
    ("shape not a list", {"tensors": [["w", "F32", 4, 0, 16]]}, "not a list"),
    ("outside the file", {"tensors": [["w", "F32", [4], 0, 1 << 40]]}, "lies outside"),
    ("negative size", {"tensors": [["w", "F32", [4], 16, 0]]}, "lies outside"),
    ("lone surrogate name", {"tensors": [["w\udc80", "F32", [4], 0, 16]]}, "not valid Unicode"),
    ("metadata not an object", {"tensors": [], "metadata": [1]}, "malformed metadata"),
    ("disjoint not a bool", {"tensors": [], "disjoint": "no"}, "malformed answer"),
]


@pytest.mark.parametrize(("why", "doc", "word"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_a_malformed_child_answer_is_a_format_error(why: str, doc: object, word: str) -> None:
    with pytest.raises(FormatError, match=word):
        sandbox._validated(doc, "gguf", Path("m.gguf"), 64)


def _reader_index(path: Path) -> list[list[Any]]:
    """The tensor records the gguf package's own GGUFReader gives for a small file."""
    gguf = pytest.importorskip("gguf")
    out = []
    for t in gguf.GGUFReader(str(path)).tensors:
        start = int(t.data_offset)
        shape = [int(d) for d in reversed(t.shape.tolist())]
        out.append([str(t.name), t.tensor_type.name, shape, start, start + int(t.n_bytes)])
    return out


@pytest.mark.parametrize("order", ["LITTLE", "BIG"])
def test_gguf_index_agrees_with_the_gguf_reader(tmp_path: Path, order: str) -> None:
    """The bounded header walk finds every tensor where GGUFReader does: quantized types,
    arrays of every kind before the tensor table, a custom alignment, either byte order."""
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian[order])
    w.add_custom_alignment(64)
    w.add_token_list(["a", "bé", ""])
    w.add_token_scores([0.5, 1.5, 2.5])
    w.add_array("test.ints", [1, 2, 3])
    w.add_string("test.text", "colour é")
    w.add_tensor("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    q8 = np.zeros((4, 34), dtype=np.uint8)
    w.add_tensor("q", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    index = _index(path)
    ours = [[t.name, t.dtype, list(t.shape), t.start, t.end] for t in index.tensors]
    assert ours == sorted(_reader_index(path), key=lambda r: r[3])
    assert index.metadata["test.text"] == "colour é"
    assert index.metadata["general.alignment"] == "64"
    assert all(t.start % 64 == 0 for t in index.tensors)


def test_a_256k_token_vocabulary_is_indexed_in_bounded_memory(tmp_path: Path) -> None:
    """A real vocabulary's arrays are stepped over, not built: GGUFReader took ~800 MB."""
    pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    gguf_vocabulary(path)
    index = _index(path)
    assert [t.name for t in index.tensors] == ["w"]
    assert index.metadata["tokenizer.ggml.model"] == "gpt2"
    assert "tokenizer.ggml.tokens" not in index.metadata


def _raw_kvs(count: int, entries: bytes) -> bytes:
    return _gguf_header(0, count, entries)


def _text(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


GGUF_BOMBS: list[tuple[str, bytes, str]] = [
    ("string array over the limit",
     _raw_kvs(1, _text(b"k") + struct.pack("<IIQ", 9, 8, 2_000_000) + b"\0" * 16_000_000),
     "2000000 elements in array 'k', over the limit of 1048576"),
    ("int array over the limit",
     _raw_kvs(1, _text(b"k") + struct.pack("<IIQ", 9, 4, 2_000_000) + b"\0" * 8_000_000),
     "2000000 elements in array 'k', over the limit"),
    ("array longer than the file", _raw_kvs(1, _text(b"k") + struct.pack("<IIQ", 9, 6, 1000)),
     "1000 elements in array 'k' cannot fit"),
    ("string element past the end",
     _raw_kvs(1, _text(b"k") + struct.pack("<IIQQ", 9, 8, 1, 1 << 40)), "runs past the end"),
    ("nested array", _raw_kvs(1, _text(b"k") + struct.pack("<IIQ", 9, 9, 1) + b"\0" * 12),
     "array of type 9"),
    ("more entries than bytes", _raw_kvs(1000, b"\0" * 100), "1000 metadata entries cannot fit"),
    ("key of a gigabyte", _raw_kvs(1, struct.pack("<Q", 1 << 30) + b"\0" * 16),
     "over the limit of 65536"),
    ("unknown value type", _raw_kvs(1, _text(b"k") + struct.pack("<I", 99)), "unknown value type"),
    ("alignment not a power of two",
     _raw_kvs(1, _text(b"general.alignment") + struct.pack("<II", 4, 3)), "not a power of two"),
    ("five dimensions",
     _gguf_header(1, 0, _text(b"t") + struct.pack("<I5QIQ", 5, 1, 1, 1, 1, 1, 0, 0)),
     "5 dimensions"),
    ("unknown ggml type",
     _gguf_header(1, 0, _text(b"t") + struct.pack("<IQIQ", 1, 1, 999, 0)), "unknown ggml type"),
    ("duplicate tensor names",
     _gguf_header(2, 0, (_text(b"t") + struct.pack("<IQIQ", 1, 1, 24, 0)) * 2), "appears twice"),
    ("version 1", b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version 1"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "blob", "word"), GGUF_BOMBS, ids=[b[0] for b in GGUF_BOMBS])
def test_a_gguf_header_over_a_limit_is_refused_with_its_number(
    tmp_path: Path, why: str, blob: bytes, word: str
) -> None:
    pytest.importorskip("gguf")
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(FormatError, match=re.escape(word)):
        _index(path)


def test_strings_over_all_arrays_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each array under its limit, their strings together over the file's budget."""
    from modelmanager.core.formats import gguf_index

    monkeypatch.setattr(gguf_index, "MAX_STRINGS", 5)
    arrays = b"".join(_text(b"a%d" % i) + struct.pack("<IIQ", 9, 8, 3) + _text(b"x") * 3
                      for i in range(2))  # fmt: skip
    path = tmp_path / "m.gguf"
    path.write_bytes(_raw_kvs(2, arrays))
    with pytest.raises(gguf_index.Refused, match="6 strings in metadata arrays"):
        gguf_index.index(path)
