"""Stored bytes and codec per tensor, in one sweep: the same answers as chunks x tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest, TensorRecord
from modelmanager.services import Workspace, history
from modelmanager.services.history import VersionDetails
from modelmanager.services.importing import import_paths
from tests.conftest import TEST_CHUNK
from tests.support.builders import random_weights, write_safetensors


def reference(details: VersionDetails) -> list[tuple[int, int]]:
    """The previous algorithm: every chunk of the file looked at for every tensor."""
    out = []
    for f, t in details.manifest.tensors:
        stored, codec, pos = 0.0, -1, 0
        for c in f.chunks:
            lo, hi = max(pos, t.start), min(pos + c.length, t.end)
            if hi > lo:
                stored += details.chunk_stored.get(c.id, 0) * (hi - lo) / c.length
                codec = details.chunk_codec.get(c.id, -1) if codec == -1 else codec
            pos += c.length
        out.append((round(stored), codec))
    return out


def test_an_imported_model_with_tensors_across_chunks(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    tensors = {
        "big": random_weights(rng, (3 * TEST_CHUNK // 4 + 7,)),  # ~3 chunks, ragged end
        "huge": random_weights(rng, (5 * TEST_CHUNK // 4,), "float16"),
        "zeros": np.zeros((TEST_CHUNK // 2,), np.float32),  # compresses to almost nothing
    }
    tensors.update({f"small.{i}": random_weights(rng, (i + 1, 3)) for i in range(40)})
    tensors["scalar"] = np.array(1.5, np.float32)
    write_safetensors(tmp_path / "src" / "model.safetensors", tensors)
    write_safetensors(tmp_path / "src" / "other.safetensors", {"w": random_weights(rng, (9,))})
    import_paths(ws, [tmp_path / "src"], "m")
    details = history.version_details(ws, "m@1")
    files = {f.path: f for f in details.manifest.files}
    spanning = [t for t in files["model.safetensors"].tensors
                if t.end - t.start > TEST_CHUNK]  # fmt: skip
    assert len(spanning) >= 2
    assert len(files["model.safetensors"].chunks) > 4
    got = details.tensor_storage()
    assert got == reference(details)
    assert len(got) == len(details.manifest.tensors) == 45
    assert sum(size for size, _codec in got) <= details.stored_bytes
    assert all(codec >= 0 for _size, codec in got[:-1])


def test_unsorted_tensors_shared_chunks_and_unknown_codecs() -> None:
    """Tensors out of offset order, overlapping, empty or past the end; chunks shared, empty,
    of unknown size or codec: each answer is what the old algorithm gave."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        lengths = [int(n) for n in rng.integers(0, 50, size=int(rng.integers(0, 8)))]
        ids = [f"c{int(i)}" for i in rng.integers(0, 4, size=len(lengths))]
        size = sum(lengths)
        tensors = []
        for n in range(int(rng.integers(0, 12))):
            start = int(rng.integers(0, size + 3))
            end = start + int(rng.integers(0, 30))
            tensors.append(TensorRecord(f"t{n}", "F32", (1,), start, end))
        chunks = tuple(ChunkRef(i, n) for i, n in zip(ids, lengths, strict=True))
        files = (FileRecord("a", size, "safetensors", chunks, tuple(tensors)),
                 FileRecord("b", 0, "generic", (), ()))  # fmt: skip
        manifest = Manifest("m", 1, None, "now", "", {}, files)
        stored = {f"c{i}": int(rng.integers(1, 99)) for i in range(3)}  # c3: size unknown
        codec = {f"c{i}": int(rng.integers(-1, 3)) for i in range(4)}
        details = VersionDetails(manifest, {}, stored, codec)
        assert details.tensor_storage() == reference(details), trial
