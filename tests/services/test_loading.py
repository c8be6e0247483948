"""The loader, the page-cache controls and the benchmark, on real device folders."""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from modelmanager.core.catalog import BenchRow
from modelmanager.core.chunks.selection import STRATEGIES
from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.jobs import JobContext
from modelmanager.core.storage import LocalBlobStore, StoreFactory, page_cache
from modelmanager.errors import Cancelled
from modelmanager.services import Workspace, init_repository
from modelmanager.services.benchmark import run_benchmark
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.loading import evict_version, load_version, warm_version
from modelmanager.services.policies import set_policy
from tests.support.builders import random_weights, write_safetensors
from tests.support.faulty import READS, FaultyFolders
from tests.support.page_cache import cached_pages, evict_until_cold

CHUNK = 64 * 1024


def _source(folder: Path, seed: int = 0, rows: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (rows, 256)) for i in range(8)}
    tensors["layer.0.bias"] = random_weights(rng, (256,), "float16")
    tensors["steps"] = np.arange(5, dtype=np.int64)
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


def _cluster(
    tmp_path: Path, policy: str, codec: str = "auto", rows: int = 64,
    blob_stores: StoreFactory = LocalBlobStore,
) -> Workspace:  # fmt: skip
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024,
                         codec=CodecSettings(codec), blob_stores=blob_stores)  # fmt: skip
    set_device(ws, "main", state="offline")
    for i in range(3):
        add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
    set_policy(ws, policy)
    import_paths(ws, [_source(tmp_path / "src", rows=rows)], "m")
    return ws


@pytest.mark.parametrize("policy", ["copies=2", "ec=2+1"])
@pytest.mark.parametrize("codec", ["auto", "raw"])
def test_load_gives_the_same_arrays_as_safetensors_and_the_exact_bytes(
    tmp_path: Path, policy: str, codec: str
) -> None:
    ws = _cluster(tmp_path, policy, codec)
    result = load_version(ws, "m", cold=True)
    original = load_file(str(tmp_path / "src" / "model.safetensors"))
    arrays = result.arrays()
    assert arrays.keys() == original.keys()
    for name, value in original.items():
        assert arrays[name].dtype == value.dtype, name
        assert np.array_equal(arrays[name], value), name
    for name in ("model.safetensors", "config.json"):
        assert result.files[name].bytes() == (tmp_path / "src" / name).read_bytes()
    assert result.files["config.json"].tensors == {}
    assert sum(result.device_bytes.values()) == result.bytes == ws.repo.resolve("m").logical_bytes
    assert result.degraded_chunks == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_loads_the_same_bytes(tmp_path: Path, strategy: str) -> None:
    ws = _cluster(tmp_path, "copies=3")
    result = load_version(ws, "m", strategy=strategy, threads=2)
    assert (
        result.files["model.safetensors"].bytes()
        == (tmp_path / "src" / "model.safetensors").read_bytes()
    )


def test_round_robin_spreads_reads_and_ranked_keeps_to_placement(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=3", rows=256)
    spread = load_version(ws, "m", strategy="round-robin").device_bytes
    assert set(spread) == {"d0", "d1", "d2"}
    assert min(spread.values()) > 0.2 * sum(spread.values())


def test_fastest_reads_from_the_device_measured_fastest(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=3")
    fast = ws.repo.devices.get("d1")
    ws.catalog.add_bench([
        BenchRow("r", "2026-01-01T00:00:00", "device", d.name, d.id, "m@1", "", 1, "cold",
                 100 << 20, 1.0 if d.id != fast.id else 0.1)
        for d in ws.repo.devices.devices if d.name != "main"
    ])  # fmt: skip
    result = load_version(ws, "m", strategy="fastest")
    assert set(result.device_bytes) == {"d1"}


@pytest.mark.parametrize("damage", ["bit flip on disk", "bit flip on read", "read error",
                                    "short read", "device offline"])  # fmt: skip
def test_a_bad_first_copy_is_read_from_another_and_counted(tmp_path: Path, damage: str) -> None:
    faults = FaultyFolders()
    ws = _cluster(tmp_path, "copies=2", codec="raw", blob_stores=faults)
    manifest = ws.repo.resolve("m")
    victims = {ref.id for f in manifest.files for ref in f.chunks[:3]}
    first = {}
    for cid in victims:
        device = ws.repo.chunks.preferred_device(cid)  # the copy a read starts from
        assert device is not None
        first[cid] = store = faults[device.root(ws.repo.root)]
        key = chunk_key(cid)
        if damage == "bit flip on disk":
            blob = bytearray(store.path(key).read_bytes())
            blob[-1] ^= 0xFF
            store.path(key).write_bytes(bytes(blob))
        elif damage == "bit flip on read":
            store.flip_bits(key=key)
        elif damage == "read error":
            store.fail(errno.EIO, op=READS, key=key)
        elif damage == "short read":
            store.short_reads(key=key)
    if damage == "device offline":  # the disk stops answering anything (pulled, dead)
        d0 = ws.repo.devices.get("d0")  # every chunk it holds a copy of is read degraded
        victims = {c.id for f in manifest.files for c in f.chunks
                   if d0 in ws.repo.chunks.locate(c.id).copies}  # fmt: skip
        faults[d0.root(ws.repo.root)].offline_after(0)
    result = load_version(ws, "m", strategy="ranked")
    assert (
        result.files["model.safetensors"].bytes()
        == (tmp_path / "src" / "model.safetensors").read_bytes()
    )
    assert result.files["config.json"].bytes() == (tmp_path / "src" / "config.json").read_bytes()
    assert result.degraded_chunks == len(victims) > 0
    if damage not in ("bit flip on disk", "device offline"):
        kind = {"bit flip on read": "flip", "read error": "fail", "short read": "short"}[damage]
        assert {key for store in first.values() for k, _op, key in store.fired if k == kind} == {
            chunk_key(c) for c in victims
        }


def test_cancel_stops_a_load(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=1")
    ctx = JobContext()
    ctx.cancel()
    with pytest.raises(Cancelled):
        load_version(ws, "m", ctx=ctx)


def _cached_bytes(path: Path) -> int:
    return cached_pages(path) * mmap.PAGESIZE


@pytest.mark.skipif(not page_cache.SUPPORTED, reason="needs posix_fadvise")
def test_evict_empties_and_warm_fills_the_page_cache(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=1", codec="raw", rows=512)
    manifest = ws.repo.resolve("m")
    paths = [p for f in manifest.files for c in f.chunks for _d, p in
             ws.repo.chunks.piece_files(c.id)]  # fmt: skip
    evict_until_cold(paths, lambda: evict_version(ws, manifest))  # best effort: may retry
    read = warm_version(ws, "m")
    assert read == sum(p.stat().st_size for p in set(paths))
    assert sum(map(_cached_bytes, set(paths))) >= read  # whole pages: a little more


# -- the benchmark on a fast and a slow device --------------------------------------------


def _tmpfs_folder() -> Path | None:
    shm = Path("/dev/shm")
    try:
        with open("/proc/mounts") as mounts:
            kinds = {line.split()[1]: line.split()[2] for line in mounts}
    except OSError:
        return None
    return shm if kinds.get(str(shm)) == "tmpfs" and os.access(shm, os.W_OK) else None


def _on_tmpfs(path: Path) -> bool:
    out = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return out.stdout.strip() == "tmpfs"


@pytest.fixture
def fast_and_disk(tmp_path: Path) -> Iterator[tuple[Workspace, Path]]:
    shm = _tmpfs_folder()
    if shm is None or _on_tmpfs(tmp_path) or not page_cache.SUPPORTED:
        pytest.skip("needs a tmpfs folder, a disk folder and posix_fadvise")
    fast = Path(shm) / f"mm-test-{os.getpid()}-{tmp_path.name}"
    ws = init_repository(tmp_path / "repo", chunk_size=1 << 20, group_size=1024,
                         codec=CodecSettings("raw"))  # fmt: skip
    set_device(ws, "main", state="offline")
    add_device(ws, fast, name="ram")
    add_device(ws, tmp_path / "disk", name="disk")
    set_policy(ws, "copies=2")
    rng = np.random.default_rng(1)
    tensors = {f"w{i}": random_weights(rng, (1024, 1024)) for i in range(24)}  # 96 MiB
    write_safetensors(tmp_path / "src" / "model.safetensors", tensors)
    import_paths(ws, [tmp_path / "src"], "big")
    os.sync()
    yield ws, fast
    ws.close()
    shutil.rmtree(fast, ignore_errors=True)


def test_benchmark_ranks_tmpfs_above_disk_and_keeps_history(
    fast_and_disk: tuple[Workspace, Path],
) -> None:
    ws, _fast = fast_and_disk
    steps: list[tuple[int, int]] = []
    ctx = JobContext(on_progress=lambda done, total, _text: steps.append((done, total)))
    report = run_benchmark(ws, "big", threads=(1, 2), ctx=ctx)
    devices = {(r.device, r.cache): r.throughput for r in report.of("device")}
    assert devices[("ram", "cold")] > 1.5 * devices[("disk", "cold")]
    assert {r.threads for r in report.of("threads")} == {1, 2}
    assert {r.strategy for r in report.of("strategy")} == set(STRATEGIES)
    assert {r.cache for r in report.of("load")} == {"cold", "warm"}
    assert steps[-1][0] == steps[-1][1]
    stored = ws.catalog.bench_rows(report.run)
    assert stored == report.rows
    speeds = ws.catalog.device_speeds()
    ram, disk = ws.repo.devices.get("ram"), ws.repo.devices.get("disk")
    assert speeds[ram.id] > speeds[disk.id]
    assert ws.catalog.best_strategy() in STRATEGIES
    ws.catalog.rebuild()  # the catalog is a cache of manifests, but history is kept
    assert ws.catalog.bench_rows(report.run) == report.rows
