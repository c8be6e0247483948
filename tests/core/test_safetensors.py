"""Safetensors parsing: agrees with the reference library, refuses every malformed header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from safetensors import safe_open

from modelmanager.core.formats import index_file
from modelmanager.core.formats.rules import MAX_TENSORS
from modelmanager.core.formats.safetensors import MAX_HEADER
from modelmanager.errors import FormatError
from tests.support.builders import raw_safetensors, write_safetensors


def test_index_matches_the_reference_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "a.weight": rng.standard_normal((3, 5)).astype(np.float32),
        "b.bf16": rng.standard_normal((7,)).astype(ml_dtypes.bfloat16),
        "c.half": rng.standard_normal((2, 2, 2)).astype(np.float16),
        "d.ids": np.arange(10, dtype=np.int64),
        "e.mask": np.array([True, False, True]),
        "f.scalar": np.array(3.5, dtype=np.float64),
        "g.empty": np.zeros((0, 4), dtype=np.float32),
    }
    path = write_safetensors(tmp_path / "m.safetensors", tensors, {"format": "pt"})
    index = index_file(path, path.stat().st_size)
    assert index.format == "safetensors"
    assert index.metadata == {"format": "pt"}
    raw = path.read_bytes()
    by_name = {t.name: t for t in index.tensors}
    assert set(by_name) == set(tensors)
    with safe_open(str(path), framework="np") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
            expected = f.get_tensor(name)
            entry = by_name[name]
            assert entry.shape == expected.shape
            assert raw[entry.start : entry.end] == expected.tobytes()
    assert by_name["b.bf16"].dtype == "BF16"
    assert by_name["f.scalar"].numel == 1


def _valid_header(n: int = 4) -> dict[str, Any]:
    return {"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}


# (case id, header (dict or raw bytes), data, declared header length or None, expected message)
BAD: list[tuple[str, Any, bytes, int | None, str]] = [
    ("header length past the end", _valid_header(), b"\0" * 16, 10_000, "runs past the end"),
    ("header length over the limit", b"{}", b"", MAX_HEADER + 1, "exceeds"),
    ("not JSON", b"{not json", b"", None, "not valid JSON"),
    ("not UTF-8", b'{"\xff": 1}', b"", None, "not UTF-8"),
    ("not an object", b"[1, 2]", b"", None, "not a JSON object"),
    (
        "duplicate tensor names",
        b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
        b'"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}',
        b"\0",
        None,
        "duplicate key",
    ),
    ("NaN in header", b'{"w": NaN}', b"", None, "NaN is not allowed"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, b"", None, "nested too deeply"),
    (
        "overlapping tensors",
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        },
        b"\0" * 12,
        None,
        "overlaps",
    ),
    ("offsets past the data", _valid_header(4), b"\0" * 8, None, "run past the end of the data"),
    (
        "dtype size does not match shape",
        {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}},
        b"\0" * 16,
        None,
        "needs 12 bytes",
    ),
    (
        "terabyte tensor declared",
        {"w": {"dtype": "F32", "shape": [1 << 38], "data_offsets": [0, 1 << 40]}},
        b"\0" * 16,
        None,
        "run past the end of the data",
    ),
    (
        "overflowing shape",
        {"w": {"dtype": "F64", "shape": [2**62, 2**62], "data_offsets": [0, 8]}},
        b"\0" * 8,
        None,
        "needs",
    ),
    (
        "negative shape",
        {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
        b"\0" * 4,
        None,
        "negative",
    ),
    (
        "unknown dtype",
        {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
        b"\0" * 16,
        None,
        "unknown dtype",
    ),
    (
        "offsets reversed",
        {"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}},
        b"\0" * 4,
        None,
        "out of order",
    ),
    (
        "bytes owned by no tensor",
        {"w": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}},
        b"\0" * 8,
        None,
        "belong to no tensor",
    ),
    ("trailing bytes", _valid_header(1), b"\0" * 9, None, "after the last tensor"),
    ("metadata not strings", {"__metadata__": {"a": 1}}, b"", None, "__metadata__"),
    ("missing field", {"w": {"dtype": "U8", "shape": [1]}}, b"\0", None, "lacks data_offsets"),
    (
        "boolean as shape size",
        {"w": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}},
        b"\0",
        None,
        "non-integer",
    ),
]


@pytest.mark.parametrize(
    ("why", "header", "data", "length", "message"), BAD, ids=[b[0] for b in BAD]
)
def test_malformed_files_are_refused_with_file_and_cause(
    tmp_path: Path, why: str, header: Any, data: bytes, length: int | None, message: str
) -> None:
    path = raw_safetensors(tmp_path / "bad.safetensors", header, data, length=length)
    with pytest.raises(FormatError) as info:
        index_file(path, path.stat().st_size)
    text = str(info.value)
    assert str(path) in text
    assert message in text


@pytest.mark.parametrize("size", [0, 3, 7])
def test_files_shorter_than_the_length_prefix_are_truncated(tmp_path: Path, size: int) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x10" * size)
    with pytest.raises(FormatError, match="truncated"):
        index_file(path, size)


def test_truncated_data_is_refused(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"w": np.ones(100, dtype=np.float32)})
    blob = path.read_bytes()
    path.write_bytes(blob[:-10])
    with pytest.raises(FormatError, match="run past the end of the data"):
        index_file(path, path.stat().st_size)


def test_content_that_only_looks_like_safetensors_is_generic(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    header = json.dumps({"w": "nonsense"}).encode()
    raw_safetensors(path, header, b"")
    assert index_file(path, path.stat().st_size).format == "generic"


def test_safetensors_without_the_extension_is_detected_by_content(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "weights.dat", {"w": np.ones(4, dtype=np.float32)})
    assert index_file(path, path.stat().st_size).format == "safetensors"


@pytest.mark.parametrize(
    "header",
    [
        {"w\ud800": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        {"__metadata__": {"k": "v\udc80"}, "w": {"dtype": "F32", "shape": [4],
                                                 "data_offsets": [0, 16]}},
        {"__metadata__": {"k\udc80": "v"}, "w": {"dtype": "F32", "shape": [4],
                                                 "data_offsets": [0, 16]}},
    ],
    ids=["name", "metadata value", "metadata key"],
)  # fmt: skip
def test_lone_surrogates_are_refused_with_the_text_escaped(tmp_path: Path, header: Any) -> None:
    """JSON's \\ud800 escapes decode to text that cannot be written as UTF-8: refused up front."""
    path = raw_safetensors(tmp_path / "m.safetensors", header, b"\0" * 16)
    with pytest.raises(FormatError, match="not valid Unicode") as info:
        index_file(path, path.stat().st_size)
    assert "\\ud800" in str(info.value) or "\\udc80" in str(info.value)
    str(info.value).encode("utf-8")  # the message itself can be printed


def test_odd_but_valid_names_and_metadata_are_indexed(tmp_path: Path) -> None:
    """Non-ASCII names, a zero-size tensor, an ESC in metadata, metadata keyed like a tensor."""
    meta = {"dtype": "a", "shape": "b", "data_offsets": "c"}
    path = write_safetensors(
        tmp_path / "m.safetensors",
        {"ß.日本": np.arange(3, dtype=np.float32), "empty": np.zeros((0, 2), dtype=np.float16)},
        meta,
    )
    index = index_file(path, path.stat().st_size)
    assert index.metadata == meta
    by_name = {t.name: t for t in index.tensors}
    assert by_name["empty"].nbytes == 0
    assert by_name["ß.日本"].shape == (3,)
    path = write_safetensors(tmp_path / "e.safetensors", {"w": np.ones(1)}, {"n": "a\x1b[31m"})
    assert index_file(path, path.stat().st_size).metadata == {"n": "a\x1b[31m"}


def _many(path: Path, count: int) -> Path:
    entries = ",".join(
        f'"t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{i + 1}]}}' for i in range(count)
    )
    return raw_safetensors(path, ("{" + entries + "}").encode(), b"\0" * count)


def test_more_tensors_than_a_file_may_hold_are_refused_with_the_count(tmp_path: Path) -> None:
    path = _many(tmp_path / "m.safetensors", MAX_TENSORS + 1)
    with pytest.raises(FormatError, match=f"declares {MAX_TENSORS + 1} tensors"):
        index_file(path, path.stat().st_size)
    ok = _many(tmp_path / "ok.safetensors", 1000)
    assert len(index_file(ok, ok.stat().st_size).tensors) == 1000


def test_a_header_over_the_limit_is_refused_with_its_tensor_count(tmp_path: Path) -> None:
    entry = b'"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
    blob = b"{" + entry * ((MAX_HEADER // len(entry)) + 1) + b"}"
    path = raw_safetensors(tmp_path / "m.safetensors", blob)
    with pytest.raises(FormatError, match=r"exceeds .*\(\d+ tensors declared\)"):
        index_file(path, path.stat().st_size)


def test_wide_characters_count_against_the_header_limit(tmp_path: Path) -> None:
    """One character beyond U+FFFF makes Python hold the header in 4 bytes per character."""
    padding = " " * (MAX_HEADER // 4)
    header = ('{"__metadata__": {"k": "\U0001f600"}' + padding + "}").encode()
    path = raw_safetensors(tmp_path / "m.safetensors", header)
    with pytest.raises(FormatError, match="4 bytes each in memory"):
        index_file(path, path.stat().st_size)
