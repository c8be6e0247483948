"""A load takes the chunks already in the page cache first (read only from memory, decoded and
verified in one worker), and sends only the others through the per-device queues."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.chunks import fetch
from modelmanager.core.chunks.store import chunk_key, hot_key
from modelmanager.core.jobs import JobContext
from modelmanager.core.storage.local import CAN_READ_RESIDENT
from modelmanager.errors import Cancelled
from modelmanager.services import Workspace
from modelmanager.services.loading import load_version
from modelmanager.services.pinning import pin
from tests.support.builders import random_weights
from tests.support.device_folders import devices_holding
from tests.support.faulty import READS, FaultyFolders
from tests.support.page_cache import evict_until_cold

CHUNK = 64 * 1024

needs_nowait = pytest.mark.skipif(
    not CAN_READ_RESIDENT, reason="this OS cannot read only from the page cache (RWF_NOWAIT)"
)


def _workspace(tmp_path: Path, faults: FaultyFolders, codec: str) -> tuple[Workspace, bytes]:
    rng = np.random.default_rng(5)
    tensors = {f"w{i}": random_weights(rng, (96, 256)) for i in range(6)}
    return devices_holding(tmp_path, faults, tensors, devices=2, policy="copies=2",
                           codec=codec, chunk_size=CHUNK)  # fmt: skip


def _chunk_reads(faults: FaultyFolders, ws: Workspace) -> dict[str, set[str]]:
    """For each read operation, the chunk ids it was called for, on every device."""
    ids = {chunk_key(c): c for c in ws.repo.resolve("m").chunk_ids()}
    ids |= {hot_key(c): c for c in ws.repo.resolve("m").chunk_ids()}
    out: dict[str, set[str]] = {}
    for d in ws.repo.devices.devices:
        for op, key in faults[d.root(ws.repo.root)].calls:
            if op in READS and key in ids:
                out.setdefault(op, set()).add(ids[key])
    return out


def _forget_calls(faults: FaultyFolders, ws: Workspace) -> None:
    for d in ws.repo.devices.devices:
        faults[d.root(ws.repo.root)].calls.clear()


def _evict(ws: Workspace, chunk_ids: list[str]) -> None:
    """Drop every piece of these chunks from the page cache, checked (eviction is best effort)."""
    paths = [path for cid in chunk_ids for _d, path in ws.repo.chunks.piece_files(cid)]
    evict_until_cold(paths, lambda: all([ws.repo.chunks.evict(cid) for cid in chunk_ids]))


@needs_nowait
@pytest.mark.parametrize("codec", ["bytegroup", "raw"])
def test_a_warm_load_reads_every_chunk_from_memory_and_none_through_the_queues(
    tmp_path: Path, codec: str
) -> None:
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults, codec)
    load_version(ws, "m")  # every first copy is now in the page cache
    _forget_calls(faults, ws)
    result = load_version(ws, "m")
    assert result.files["model.safetensors"].bytes() == original
    every = set(ws.repo.resolve("m").chunk_ids())
    assert _chunk_reads(faults, ws) == {"read_resident": every}
    assert result.degraded_chunks == 0
    assert sum(result.device_bytes.values()) == result.manifest.logical_bytes


@needs_nowait
def test_a_cold_load_sends_what_is_not_in_memory_through_the_device_queues(
    tmp_path: Path,
) -> None:
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults, "bytegroup")
    manifest = ws.repo.resolve("m")
    (f,) = [f for f in manifest.files if f.path == "model.safetensors"]
    load_version(ws, "m")
    cold = [ref.id for ref in f.chunks[::2]]  # every other chunk leaves the page cache
    _evict(ws, cold)
    _forget_calls(faults, ws)
    result = load_version(ws, "m")
    assert result.files["model.safetensors"].bytes() == original
    reads = _chunk_reads(faults, ws)
    assert reads["read_resident"] == set(manifest.chunk_ids())  # each is asked once
    assert reads["get"] == set(cold)  # only the evicted ones were read by the queues
    # All of it cold: after a few misses the pass stops asking (each miss starts the disk's
    # readahead), and the queues read everything.
    _evict(ws, sorted(manifest.chunk_ids()))
    _forget_calls(faults, ws)
    assert load_version(ws, "m", threads=2).files["model.safetensors"].bytes() == original
    reads = _chunk_reads(faults, ws)
    assert reads["get"] == set(manifest.chunk_ids())
    assert len(reads["read_resident"]) <= fetch.COLD_AFTER + 2 < len(manifest.chunk_ids())


@needs_nowait
@pytest.mark.parametrize("damage", ["flip", "fail", "short"])
def test_a_bad_copy_read_from_memory_is_read_again_from_another(
    tmp_path: Path, damage: str
) -> None:
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults, "bytegroup")
    load_version(ws, "m")
    manifest = ws.repo.resolve("m")
    (f,) = [f for f in manifest.files if f.path == "model.safetensors"]
    victim = f.chunks[1].id
    device = ws.repo.chunks.preferred_device(victim)
    assert device is not None
    store = faults[device.root(ws.repo.root)]
    key = chunk_key(victim)
    if damage == "flip":  # bit rot: every read of that copy gives the flipped byte
        store.flip_bits(key=key)
    elif damage == "fail":
        store.fail(op="read_resident", key=key)
    else:
        store.short_reads(key=key, op="read_resident")
    result = load_version(ws, "m", strategy="ranked")
    assert result.files["model.safetensors"].bytes() == original
    assert (damage, "read_resident", key) in store.fired
    # A flipped bit decodes to bytes the hash refuses: read from the other copy (degraded).
    # A failed or short read from memory is only "not in memory": the queue reads it again.
    assert result.degraded_chunks == (1 if damage == "flip" else 0)


@needs_nowait
def test_a_pinned_version_is_read_from_its_hot_copies_in_memory(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults, "bytegroup")
    pin(ws, "m")
    manifest = ws.repo.resolve("m")
    load_version(ws, "m")
    _forget_calls(faults, ws)
    result = load_version(ws, "m")
    assert result.files["model.safetensors"].bytes() == original
    reads = _chunk_reads(faults, ws)
    assert reads == {"read_resident": set(manifest.chunk_ids())}
    hot = {k for d in ws.repo.devices.devices
           for op, k in faults[d.root(ws.repo.root)].calls if op == "read_resident"}  # fmt: skip
    assert hot == {hot_key(c) for c in manifest.chunk_ids()}  # the hot copies, not the pieces
    # A hot copy whose bytes are wrong is passed over for the policy's pieces (degraded).
    (f,) = [f for f in manifest.files if f.path == "model.safetensors"]
    victim = f.chunks[0].id
    for d in ws.repo.devices.devices:
        faults[d.root(ws.repo.root)].flip_bits(key=hot_key(victim), op="read_resident")
    result = load_version(ws, "m")
    assert result.files["model.safetensors"].bytes() == original


def test_a_cancel_stops_the_load_from_memory_at_the_next_chunk(tmp_path: Path) -> None:
    faults = FaultyFolders()
    ws, _original = _workspace(tmp_path, faults, "bytegroup")
    load_version(ws, "m")
    every = set(ws.repo.resolve("m").chunk_ids())
    _forget_calls(faults, ws)
    for d in ws.repo.devices.devices:  # a slow memory read: the cancel lands in the middle
        faults[d.root(ws.repo.root)].delay(0.1, op="read_resident")
    ctx = JobContext()
    timer = threading.Timer(0.05, ctx.cancel)
    timer.start()
    with pytest.raises(Cancelled):
        load_version(ws, "m", ctx=ctx, threads=2)  # two workers: two chunks at a time
    timer.join()
    asked = _chunk_reads(faults, ws).get("read_resident", set())
    assert len(every) >= 8
    assert 0 < len(asked) <= 4  # it started, and each worker stopped at its next chunk
    assert "get" not in _chunk_reads(faults, ws)  # the queues never started


def test_without_reads_from_memory_every_chunk_goes_through_the_queues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the OS cannot read only from memory (macOS, Windows) the queues do all of it."""
    monkeypatch.setattr(fetch, "RESIDENT_FIRST", False)
    faults = FaultyFolders()
    ws, original = _workspace(tmp_path, faults, "bytegroup")
    load_version(ws, "m")
    _forget_calls(faults, ws)
    assert load_version(ws, "m").files["model.safetensors"].bytes() == original
    reads = _chunk_reads(faults, ws)
    assert "read_resident" not in reads
    assert reads["get"] == set(ws.repo.resolve("m").chunk_ids())
