"""The chunk store verifies every read: damage of any kind is an IntegrityError naming the chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.chunks.store import HEADER, ChunkMissing, chunk_key
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.ids import content_id
from modelmanager.core.repo.repository import Repository
from modelmanager.errors import IntegrityError


@pytest.fixture
def store(tmp_path: Path) -> PlacedChunkStore:
    """The chunks of a new repository whose only device is its own folder (``tmp_path``)."""
    return Repository.create(tmp_path, codec=CodecSettings("zstd")).chunks


def _put(store: PlacedChunkStore, data: bytes) -> str:
    cid = content_id(data)
    store.put(cid, data)
    store.flush()
    return cid


DATA = (np.arange(50_000, dtype=np.float32) * 0.001).tobytes()


def test_get_returns_exact_bytes(store: PlacedChunkStore) -> None:
    cid = _put(store, DATA)
    assert bytes(store.get(cid, len(DATA))) == DATA
    assert store.stored_size(cid) is not None
    assert store.stored_size(cid) < len(DATA)  # type: ignore[operator]
    assert [c for c, _s in store.iter_stored()] == [cid]
    assert store.header(cid).length == len(DATA)


@pytest.mark.parametrize("offset", [HEADER.size, HEADER.size + 100, -1])
def test_flipped_bit_anywhere_in_the_payload_is_detected(
    store: PlacedChunkStore, tmp_path: Path, offset: int
) -> None:
    cid = _put(store, DATA)
    path = tmp_path / chunk_key(cid)
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x01
    path.write_bytes(blob)
    with pytest.raises(IntegrityError) as info:
        store.get(cid, len(DATA))
    assert cid in str(info.value)


def test_truncated_chunk_is_detected(store: PlacedChunkStore, tmp_path: Path) -> None:
    cid = _put(store, DATA)
    path = tmp_path / chunk_key(cid)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(IntegrityError, match="truncated"):
        store.get(cid, len(DATA))


def test_missing_chunk_is_its_own_error(store: PlacedChunkStore) -> None:
    with pytest.raises(ChunkMissing, match="missing"):
        store.get("ab" * 32, 10)
    with pytest.raises(ChunkMissing, match="missing"):
        store.header("ab" * 32)


def test_chunk_replaced_by_a_folder_is_reported_missing(
    store: PlacedChunkStore, tmp_path: Path
) -> None:
    cid = _put(store, DATA)
    path = tmp_path / chunk_key(cid)
    path.unlink()
    path.mkdir()
    with pytest.raises(IntegrityError):
        store.get(cid, len(DATA))
    # The empty folder is damage a new write clears.
    _put(store, DATA)
    assert bytes(store.get(cid, len(DATA))) == DATA


def test_length_disagreeing_with_manifest_is_detected(store: PlacedChunkStore) -> None:
    cid = _put(store, DATA)
    with pytest.raises(IntegrityError, match="manifest says"):
        store.get(cid, len(DATA) - 1)


def test_foreign_file_in_chunk_folder_is_not_a_chunk(
    store: PlacedChunkStore, tmp_path: Path
) -> None:
    cid = _put(store, DATA)
    (tmp_path / "chunks" / "zz").mkdir()
    (tmp_path / "chunks" / "zz" / "notes.txt").write_text("hello")
    assert [c for c, _s in store.iter_stored()] == [cid]


def test_bad_magic_is_detected(store: PlacedChunkStore, tmp_path: Path) -> None:
    cid = _put(store, DATA)
    path = tmp_path / chunk_key(cid)
    path.write_bytes(b"JUNK" + path.read_bytes()[4:])
    with pytest.raises(IntegrityError, match="bad magic"):
        store.get(cid, len(DATA))
