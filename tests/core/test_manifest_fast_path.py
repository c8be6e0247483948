"""The manifest's column-wise check (the fast path a 100,000-tensor version is read with)
accepts exactly what the per-entry check accepts, builds the same records, and leaves every
error to the per-entry check, so a bad manifest is refused with the same words as before."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from modelmanager.core.ids import content_id
from modelmanager.core.repo import manifest as mf
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest, TensorRecord
from modelmanager.errors import IntegrityError

SIZE = 64
DIGEST = "0" * 32
ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.5, 2**70, SIZE, SIZE + 1, "", "x", "F32", "\ud800",
    "a" * 32, "a" * 33, [], [1], [0, 3], [-1], [True], [1.0], ["1"], {}, {"a": 1},
]  # fmt: skip


def _doc() -> dict[str, Any]:
    tensors = (
        TensorRecord("a", "F32", (2, 2), 0, 16, DIGEST),
        TensorRecord("b.weight", "BF16", (), 16, 18, DIGEST),
        TensorRecord("c", "I8", (0,), 18, 18, DIGEST),
        TensorRecord("d", "U8", (46,), 18, SIZE, DIGEST),
    )
    chunks = (ChunkRef(content_id(b"1"), 40), ChunkRef(content_id(b"2"), 24))
    files = (FileRecord("m.safetensors", SIZE, "safetensors", chunks, tensors),)
    return Manifest("m", 1, None, "2026-01-01T00:00:00Z", "", {}, files).to_json()


def _mutations() -> Iterator[tuple[str, dict[str, Any]]]:
    """Valid and invalid variants of one manifest, each one change away from a good one."""
    yield "unchanged", _doc()
    for row, col, value in itertools.product(range(4), range(6), ODD_VALUES):
        doc = _doc()
        doc["files"][0]["tensors"][row][col] = copy.deepcopy(value)
        yield f"tensor {row} field {col} = {value!r}", doc
    for row, col, value in itertools.product(range(2), range(2), ODD_VALUES):
        doc = _doc()
        doc["files"][0]["chunks"][row][col] = copy.deepcopy(value)
        yield f"chunk {row} field {col} = {value!r}", doc
    odd_lists: list[Any] = ["abcdef", "ab", {}, "", None, [[]], [["a"] * 6], 7]
    for where, value in itertools.product(("tensors", "chunks"), odd_lists):
        doc = _doc()
        doc["files"][0][where] = copy.deepcopy(value)
        yield f"{where} = {value!r}", doc
        for row in (0, 1):
            doc = _doc()
            doc["files"][0][where][row] = copy.deepcopy(value)
            yield f"{where}[{row}] = {value!r}", doc
    for extra in ([1], [1, 2]):
        doc = _doc()
        doc["files"][0]["tensors"][0] += extra  # seven or eight fields
        yield f"tensor 0 with {len(extra)} more fields", doc
        doc = _doc()
        doc["files"][0]["chunks"][0] += extra
        yield f"chunk 0 with {len(extra)} more fields", doc
    doc = _doc()
    doc["files"][0]["tensors"] = []
    yield "no tensors", doc


def _outcome(doc: dict[str, Any]) -> Manifest | str:
    try:
        return Manifest.from_doc(doc, "versions/1.json")
    except IntegrityError as e:
        return str(e)


@pytest.mark.parametrize(("what", "doc"), list(_mutations()), ids=lambda v: str(v)[:60])
def test_the_fast_path_agrees_with_the_per_entry_check(
    what: str, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _outcome(copy.deepcopy(doc))
    monkeypatch.setattr(mf, "_fast_tensors", lambda entries, size: None)
    monkeypatch.setattr(mf, "_fast_chunks", lambda entries, size: None)
    checked = _outcome(doc)  # every entry through the rules one by one (the reference)
    assert fast == checked, what


def test_the_fast_path_takes_a_good_manifest_and_refuses_a_bad_one() -> None:
    """It is really used (a good manifest never reaches the per-entry loop), and a bad
    entry never slips through it."""
    f = _doc()["files"][0]
    tensors = mf._fast_tensors(f["tensors"], SIZE)
    assert tensors == mf._checked_tensors(f["tensors"], "m.safetensors", SIZE)
    assert tensors is not None
    assert all(type(t) is TensorRecord and type(t.shape) is tuple for t in tensors)
    assert mf._fast_chunks(f["chunks"], SIZE) == mf._checked_chunks(f["chunks"], "m", SIZE)
    f["tensors"][3][4] = SIZE + 1
    assert mf._fast_tensors(f["tensors"], SIZE) is None
    with pytest.raises(ValueError, match="lies outside the file"):
        mf._checked_tensors(f["tensors"], "m.safetensors", SIZE)
