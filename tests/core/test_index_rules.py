"""The rules every index obeys, shared by the importer and the manifest reader (issue 15).

An index that breaks them never reaches the chunk writer: ``index_file`` refuses it, and the
manifest reader refuses the same fields, so nothing an import stores can fail ``verify``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.core import formats
from modelmanager.core.formats import FileIndex, TensorEntry, index_file, safetensors
from modelmanager.core.formats.rules import MAX_TENSORS
from modelmanager.core.repo.manifest import Manifest
from modelmanager.errors import FormatError, IntegrityError
from tests.support.builders import write_safetensors

SIZE = 100
DIGEST = "0" * 32


def _checked(index: FileIndex) -> FileIndex:
    return formats._validated_index(index, Path("m.bin"), SIZE)


def _entry(**change: Any) -> TensorEntry:
    fields: dict[str, Any] = {"name": "w", "dtype": "F32", "shape": (4,), "start": 0, "end": 16}
    return TensorEntry(**{**fields, **change})


# (why, the bad field, a word of the message)
BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("tensor past the end of the file", {"start": 90, "end": 120}, "lies outside"),
    ("negative size (end before start)", {"start": 16, "end": 0}, "lies outside"),
    ("negative start", {"start": -4, "end": 12}, "tensor start"),
    ("float offset", {"end": 16.0}, "tensor end"),
    ("boolean size in a shape", {"shape": (True,)}, "non-integer"),
    ("float size in a shape", {"shape": (4.0,)}, "non-integer"),
    ("negative size in a shape", {"shape": (-1,)}, "non-integer"),
    ("shape not a sequence", {"shape": 4}, "not a list"),
    ("lone surrogate in a name", {"name": "w\udc80"}, "not valid Unicode"),
    ("name not a string", {"name": 7}, "must be a string"),
    ("dtype with spaces", {"dtype": "F 32"}, "bad dtype"),
    ("empty dtype", {"dtype": ""}, "bad dtype"),
    ("dtype not a string", {"dtype": None}, "bad dtype"),
]


@pytest.mark.parametrize(("why", "change", "word"), BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_an_index_breaking_a_rule_never_reaches_the_chunk_writer(
    why: str, change: dict[str, Any], word: str
) -> None:
    with pytest.raises(FormatError, match=word) as info:
        _checked(FileIndex("x", (_entry(**change),)))
    assert info.value.path == "m.bin"


@pytest.mark.parametrize(("why", "change", "word"), BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_the_manifest_reader_refuses_the_same_fields(
    why: str, change: dict[str, Any], word: str
) -> None:
    """One rule set: what the importer refuses, a manifest from elsewhere may not hold."""
    t = _entry(**change)
    shape = list(t.shape) if isinstance(t.shape, tuple) else t.shape
    record = [t.name, t.dtype, shape, t.start, t.end, DIGEST]
    doc = {
        "format": 1, "model": "m", "version": 1, "parent": None, "created": "", "message": "",
        "metadata": {},
        "files": [{"path": "m.bin", "size": SIZE, "format": "x", "metadata": {},
                   "chunks": [["b" * 64, SIZE]], "tensors": [record]}],
    }  # fmt: skip
    data = json.dumps(doc).encode()
    with pytest.raises(IntegrityError, match=word):
        Manifest.from_bytes(data, "manifest")


def test_two_tensors_with_one_name_are_refused() -> None:
    index = FileIndex("x", (_entry(), _entry(start=16, end=32)))
    with pytest.raises(FormatError, match="appears twice"):
        _checked(index)


def test_overlapping_tensors_are_refused_where_chunks_follow_tensors() -> None:
    index = FileIndex("x", (_entry(), _entry(name="v", start=8, end=24)))
    with pytest.raises(FormatError, match="overlaps tensor 'w'"):
        _checked(index)
    # Views of one storage may share bytes: chunks are then cut at the regions only.
    shared = FileIndex("x", index.tensors, ((0, 24),), tensor_regions=False)
    assert _checked(shared) is shared


def test_header_regions_must_lie_in_the_file_and_apart_from_tensors() -> None:
    with pytest.raises(FormatError, match="header region"):
        _checked(FileIndex("x", (), ((0, SIZE + 1),)))
    with pytest.raises(FormatError, match="overlaps the header"):
        _checked(FileIndex("x", (_entry(),), ((0, 8),)))


def test_metadata_must_be_utf8_text() -> None:
    for bad in ({"k": "v\ud800"}, {"k\ud800": "v"}, {"k": 1}):
        with pytest.raises(FormatError, match="metadata"):
            _checked(FileIndex("x", (), (), bad))  # type: ignore[arg-type]


def test_more_tensors_than_the_limit_are_refused_with_the_count() -> None:
    tensors = tuple(_entry(name=f"t{i}", start=0, end=0) for i in range(MAX_TENSORS + 1))
    with pytest.raises(FormatError, match=f"{MAX_TENSORS + 1} tensors"):
        formats._validated_index(FileIndex("x", tensors), Path("m.bin"), SIZE)


def test_running_out_of_memory_while_reading_is_that_files_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"w": np.ones(2)})

    def exhausted(*_args: object) -> FileIndex:
        raise MemoryError

    monkeypatch.setattr(safetensors, "read_index", exhausted)
    with pytest.raises(FormatError, match="out of memory while reading") as info:
        index_file(path, path.stat().st_size)
    assert info.value.path == str(path)
