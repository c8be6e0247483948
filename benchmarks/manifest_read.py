"""How fast a 100,000-tensor manifest is read and checked, and the selection path (issue 18).

    python benchmarks/manifest_read.py [--tensors 100000] [--repeat 5] [--keep DIR] [--profile]

Imports one safetensors file of N tiny tensors through the real import path (once: ``--keep
DIR`` builds there and reuses it), then prints the least CPU seconds (of ``--repeat`` runs) per
100,000 tensors of each step of selecting that version, with Python's garbage collector on
(the CLI) and off (the window, which collects on its UI thread instead):

- ``unseal``: the sealed record read from disk and checked (strict JSON, canonical form,
  BLAKE3);
- ``validate``: ``Manifest.from_doc`` on the parsed record (every field checked; the tensors
  are held as checked columns, no record made);
- ``read_manifest``: both, as ``Repository.read_manifest`` does them;
- ``details``: ``services.history.version_details`` (manifest, labels, each chunk's stored size
  and codec), its manifest cache emptied first (a version selected the first time);
- ``details again``: the same with the cache holding the manifest (a version selected again,
  or re-read after a label moved: a read and a hash, no parse);
- ``records``: making the tensors' records from the columns, which the first walk over them
  does (the Structure tab's job, ``show --tensors``); nothing on the selection path does;
- ``overview``: the Overview tab's figures (parameters, dtype mix), from the columns;
- ``layout``: ``services.redundancy.version_layout`` with the manifest already read;
- ``tensor_storage``: the Tensors tab's per-tensor stored bytes and codec;
- ``tensor_rows``: the Tensors tab's rows (``gui.tensor_table.tensor_rows``: storage, names
  and their order; each row's cells are formatted when drawn), when PySide6 is installed;
- ``selection``: details + layout + tensor rows (tensor_storage without PySide6), what the
  job that reads a version selected the first time does (gui/shown_version.py).

``--profile`` prints the top of a cProfile of ``read_manifest``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))

from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.versions import manifest_key
from modelmanager.services import Workspace, history, init_repository, open_workspace
from modelmanager.services.importing import import_paths
from modelmanager.services.redundancy import version_layout

MODEL = "many"


def build(root: Path, n: int) -> None:
    """A repository holding one version of ``n`` tiny tensors, imported for real."""
    import numpy as np

    from tests.support.builders import write_safetensors

    rng = np.random.default_rng(0)
    src = root.parent / "many.safetensors"
    names = [f"blocks.{i // 100}.t{i % 100}.weight" for i in range(n)]
    write_safetensors(src, {k: rng.standard_normal(4).astype(np.float32) for k in names})
    ws = init_repository(root)
    import_paths(ws, [src], MODEL)
    ws.close()
    src.unlink()


def rows(ws: Workspace, repeat: int) -> dict[str, float]:
    """Median seconds of each step (see the module docstring)."""
    repo = ws.repo
    key = manifest_key(MODEL, 1)
    doc = repo.records.read(key)
    manifest = repo.read_manifest(MODEL, 1)
    details = history.version_details(ws, f"{MODEL}@1")

    def fresh_details() -> history.VersionDetails:
        history.MANIFESTS.clear()  # a first selection
        return history.version_details(ws, f"{MODEL}@1")

    try:
        from modelmanager.gui.tensor_table import tensor_rows
    except ImportError:  # no PySide6: the GUI's row is left out
        rows_of: Callable[[history.VersionDetails], object] = history.VersionDetails.tensor_storage
    else:
        rows_of = tensor_rows

    def selection() -> None:
        d = fresh_details()
        version_layout(ws, d.manifest)
        rows_of(d)

    def records() -> object:
        walked = Manifest.from_doc(doc, key)
        start = time.thread_time()
        for f in walked.files:
            list(f.tensors)  # the first walk makes the records
        return time.thread_time() - start

    def overview() -> None:
        manifest.parameters  # noqa: B018
        manifest.dtype_bytes()

    steps = {
        "unseal": lambda: repo.records.read(key),
        "validate": lambda: Manifest.from_doc(doc, key),
        "read_manifest": lambda: repo.read_manifest(MODEL, 1),
        "records": records,
        "details": fresh_details,
        "details again": lambda: history.version_details(ws, f"{MODEL}@1"),
        "overview": overview,
        "layout": lambda: version_layout(ws, manifest),
        "tensor_storage": details.tensor_storage,
    }
    if rows_of is not history.VersionDetails.tensor_storage:
        steps["tensor_rows"] = lambda: rows_of(details)
    steps["selection"] = selection
    return {name: best_cpu_seconds(fn, repeat) for name, fn in steps.items()}


def best_cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The least CPU time of ``repeat`` runs of ``fn`` in this thread: on a shared machine
    wall time measures the neighbours (every step here is one thread, computing, on files
    in the page cache). What ``fn`` returns is freed after the clock is read (the window
    keeps what it read); a step that returns a float timed itself."""
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        made = fn()
        took = time.thread_time() - start
        times.append(made if isinstance(made, float) else took)
        del made
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tensors", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build (once) and keep the repository here")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="mm-manifest-"))
    root = base / "repo"
    try:
        if not root.exists():
            base.mkdir(parents=True, exist_ok=True)
            build(root, args.tensors)
        ws = open_workspace(root)
        n = len(ws.repo.read_manifest(MODEL, 1).tensors)
        print(f"{n:,} tensors; manifest ", end="")
        size = sum(s for _k, s in ws.repo.records.keys(f"models/{MODEL}/versions"))
        print(f"{size / 1e6:.1f} MB")
        cli = rows(ws, args.repeat)
        gc.disable()  # as in the window (gui/gc_guard.py collects on the UI thread instead)
        window = rows(ws, args.repeat)
        gc.enable()
        print(f"{'seconds per 100k tensors':<24} {'gc on (CLI)':>12} {'gc off (window)':>16}")
        for name, seconds in cli.items():
            print(f"{name:<24} {seconds * 100_000 / n:12.3f} {window[name] * 100_000 / n:16.3f}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(ws.repo.read_manifest, MODEL, 1)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        ws.close()
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
