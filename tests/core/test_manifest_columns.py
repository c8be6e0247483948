"""A manifest read from JSON holds its tensors as checked columns (issue 18: a first selection of
a 100,000-tensor version spent 0.1 s making records nothing on its path reads): the figures the
window shows come from the columns, the records are made once when something walks them, and
every reader sees the same tensors as before."""

from __future__ import annotations

import gc
import math
import pickle
import threading
from collections import Counter
from typing import Any

from modelmanager.core.ids import content_id
from modelmanager.core.repo.manifest import (
    ChunkRef,
    FileRecord,
    Manifest,
    TensorColumns,
    TensorRecord,
)

DTYPES = ("F32", "BF16", "I8")


def _records(n: int, offset: int = 0) -> tuple[TensorRecord, ...]:
    out, at = [], 0
    for i in range(n):
        shape = (i % 3, 2) if i % 5 else ()
        size = 4 * (i % 7)
        out.append(TensorRecord(f"layer.{i + offset}.w", DTYPES[i % 3], shape, at, at + size,
                                f"{i:032x}"))  # fmt: skip
        at += size
    return tuple(out)


def _manifest(n: int) -> Manifest:
    """Two files of tensors and one without any, as an import writes them."""
    files = []
    for k, tensors in enumerate((_records(n), (), _records(n // 2, n))):
        size = max((t.end for t in tensors), default=0) + 8
        files.append(FileRecord(f"f{k}.bin", size, "safetensors",
                                (ChunkRef(content_id(bytes([k])), size),), tensors))  # fmt: skip
    return Manifest("acme/m", 1, None, "2026-01-01T00:00:00Z", "", {}, tuple(files))


def _read(m: Manifest) -> Manifest:
    """``m`` as the window reads it: its JSON document checked by ``from_doc``."""
    return Manifest.from_doc(m.to_json(), "models/acme~m/versions/1.json")


def _live_records() -> int:
    return sum(type(o) is TensorRecord for o in gc.get_objects())


def test_the_window_figures_of_a_read_manifest_make_no_record() -> None:
    built = _manifest(3000)
    del built  # only the read manifest's tensors count below
    gc.collect()
    before = _live_records()
    m = _read(_manifest(3000))
    gc.collect()
    assert _live_records() == before  # checked, held as columns: no record yet
    parameters, mix, doc = m.parameters, m.dtype_bytes(), m.to_json()
    lengths = [len(f.tensors) for f in m.files]
    columns = [f.tensor_columns for f in m.files]
    gc.collect()
    assert _live_records() == before
    assert lengths == [3000, 0, 1500]
    assert [len(c.names) for c in columns] == lengths
    # The same figures as record by record (the reference), and the same document.
    records = [t for f in m.files for t in f.tensors]
    assert parameters == sum(math.prod(t.shape) for t in records)
    expected: Counter[str] = Counter()
    for t in records:
        expected[t.dtype] += t.end - t.start
    assert mix == dict(expected)
    assert list(mix) == list(expected)  # in the order the dtypes first appear
    assert doc == _manifest(3000).to_json()
    assert _read(_manifest(3000)) == _manifest(3000)


def test_records_are_made_once_and_are_the_same_objects_in_every_thread() -> None:
    m = _read(_manifest(2000))
    tensors = m.files[0].tensors
    first = tensors[7]  # made for the asking: an equal record
    assert first == _records(2000)[7]
    assert tensors[-1] == _records(2000)[-1]
    assert tensors[10:13] == _records(2000)[10:13]
    seen: list[list[int]] = []
    start = threading.Barrier(4)

    def walk() -> None:
        start.wait()
        seen.append([id(t) for t in tensors])

    threads = [threading.Thread(target=walk) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = [id(t) for t in tensors]
    assert all(ids == again for ids in seen)  # one set of records, whoever walked first
    assert tensors[7] is list(tensors)[7]  # once made, indexing gives the same objects
    assert type(tensors[0]) is TensorRecord
    assert type(tensors[0].shape) is tuple


def test_columns_compare_hash_and_pickle_as_the_tuple_they_replace() -> None:
    records = _records(50)
    read = _read(_manifest(50)).files[0].tensors
    held = FileRecord("f.bin", 9999, "safetensors", (), records).tensors
    assert isinstance(read, TensorColumns)
    assert isinstance(held, TensorColumns)
    assert read == records
    assert records == read  # the tuple on the left asks the columns
    assert held == read
    assert read == held
    assert read != records[:-1]
    assert read != list(records)  # a list is not a tuple, as before
    assert hash(read) == hash(records)
    assert held.columns == read.columns
    changed = _read(_manifest(50)).files[0].tensors
    assert changed == read
    other: Any = pickle.loads(pickle.dumps(read))
    assert other == records
    assert isinstance(other, TensorColumns)
    assert len(TensorColumns()) == 0
    assert TensorColumns() == ()
    assert not FileRecord("e", 0, "raw", ()).tensors
