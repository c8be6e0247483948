"""ManifestCache: parsed manifests by the hash of the bytes they came from, bounded (issue 18's
selection of a 100,000-tensor version: parsed once, not on every selection)."""

from __future__ import annotations

from modelmanager.core.repo.manifest import (
    ChunkRef,
    FileRecord,
    Manifest,
    ManifestCache,
    TensorRecord,
)

CID = "ab" * 32


def _manifest(seq: int, tensors: int) -> Manifest:
    records = tuple(TensorRecord(f"t{i}", "F32", (1,), 4 * i, 4 * i + 4) for i in range(tensors))
    files = (FileRecord("m.safetensors", 4 * tensors, "safetensors",
                        (ChunkRef(CID, 4 * tensors),), records),)  # fmt: skip
    return Manifest("acme/m", seq, None, "2026-01-01T00:00:00Z", "", {}, files)


def test_a_manifest_is_found_by_the_hash_of_the_same_bytes_only() -> None:
    cache = ManifestCache()
    m = _manifest(1, 3)
    data = m.to_bytes()
    cache.put("repo\0models/acme/m/versions/1.json", cache.digest(data), m)
    assert cache.get("repo\0models/acme/m/versions/1.json", cache.digest(data)) is m
    changed = data.replace(b'"t1"', b'"t9"')  # one byte off: another content
    assert cache.get("repo\0models/acme/m/versions/1.json", cache.digest(changed)) is None
    assert cache.get("other\0models/acme/m/versions/1.json", cache.digest(data)) is None


def test_the_cache_holds_at_most_its_tensors_and_entries_least_recent_first() -> None:
    cache = ManifestCache(max_tensors=250, max_entries=3)
    ms = [_manifest(seq, 100) for seq in (1, 2, 3)]
    for m in ms:
        cache.put(str(m.seq), str(m.seq), m)
    assert len(cache) == 2  # 303 tensors held would pass 250: the oldest went
    assert cache.get("1", "1") is None
    assert cache.get("2", "2") is ms[1]  # now the most recent
    cache.put("4", "4", _manifest(4, 100))
    assert cache.get("3", "3") is None
    assert cache.get("2", "2") is ms[1]
    cache.put("big", "big", _manifest(5, 300))  # alone over the bound: not held
    assert cache.get("big", "big") is None
    assert len(cache) == 2
    small = ManifestCache(max_entries=2)
    for seq in range(1, 5):
        small.put(str(seq), str(seq), _manifest(seq, 1))
    assert len(small) == 2
    assert small.get("4", "4") is not None
    small.clear()
    assert len(small) == 0
    assert small.get("4", "4") is None
