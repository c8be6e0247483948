"""A cold load of an erasure-coded version reads each chunk's data fragments at once, each on
its device's own queue, and still gets the exact bytes when a fragment is bad or stuck."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from modelmanager.core.chunks.layout import fragment_key
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.services import Workspace
from modelmanager.services.loading import LoadResult, load_version
from tests.support.builders import random_weights
from tests.support.device_folders import devices_holding
from tests.support.faulty import FaultyFolders

CHUNK = 64 * 1024


def _ec_cluster(tmp_path: Path, faults: FaultyFolders) -> tuple[Workspace, bytes]:
    """Three devices holding a model as 2+1 fragments (main offline), through fault seams."""
    rng = np.random.default_rng(5)
    tensors = {f"w{i}": random_weights(rng, (128, 256)) for i in range(4)}
    return devices_holding(tmp_path, faults, tensors, devices=3, policy="ec=2+1", codec="zstd",
                           chunk_size=CHUNK)  # fmt: skip


def _largest_chunk(ws: Workspace) -> str:
    """A chunk of tensor bytes (the file's first chunk is its small header)."""
    manifest = ws.repo.resolve("m")
    return max((c for f in manifest.files for c in f.chunks), key=lambda c: c.length).id


def _fragment_devices(chunks: PlacedChunkStore, cid: str) -> dict[int, Path]:
    """Fragment index -> root of the device its read starts from."""
    layout = chunks.ordered(cid, chunks.locate(cid))
    return {i: devs[0].root(chunks.repo_root) for i, devs in layout.fragments[(2, 1)].items()}


def test_a_chunks_second_fragment_is_read_while_its_first_device_is_stuck(
    tmp_path: Path,
) -> None:
    faults = FaultyFolders()
    ws, original = _ec_cluster(tmp_path, faults)
    manifest = ws.repo.resolve("m")
    cid = next(c.id for f in manifest.files if f.path == "model.safetensors" for c in f.chunks)
    where = _fragment_devices(ws.repo.chunks, cid)
    first, second = faults[where[0]], faults[where[1]]
    gate = threading.Event()
    first.block(gate, op="get", key=fragment_key(2, 1, cid, 0))
    result: list[LoadResult] = []
    loader = threading.Thread(target=lambda: result.append(load_version(ws, "m", threads=1)))
    loader.start()
    try:
        wanted = ("get", fragment_key(2, 1, cid, 1))
        deadline = time.monotonic() + 20
        while wanted not in second.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        read_meanwhile = wanted in second.calls
    finally:
        gate.set()
        loader.join(60)
    assert read_meanwhile, "fragment 1 waited for the stuck fragment 0: one queue, not two"
    assert result[0].files["model.safetensors"].bytes() == original
    assert result[0].degraded_chunks == 0


def test_a_corrupt_data_fragment_is_rebuilt_from_parity_and_counted(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws, original = _ec_cluster(tmp_path, faults)
    cid = _largest_chunk(ws)
    path = _fragment_devices(ws.repo.chunks, cid)[1] / fragment_key(2, 1, cid, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # in the payload: only the chunk's hash tells
    path.write_bytes(bytes(data))
    result = load_version(ws, "m", cold=True)
    assert result.files["model.safetensors"].bytes() == original
    assert result.degraded_chunks == 1
