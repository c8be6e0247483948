"""How fast a large repository opens and lists: 1,000 models x 5 versions (issue 6).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_listing.py [--models 1000] [--versions 5]

Builds the repository once (every version commits a real manifest; all share one chunk, as
the listing does not read chunks), then times, in one run, what opening the window does:
open the repository with its catalog (sync), read models and versions from the catalog, and
fill the Qt tree model. Also times a cold catalog (deleted first, rebuilt from manifests).

With --tensors N (default 100,000) it also imports a real safetensors file of N small tensors
and times the Tensors tab's model and proxy: filling, sorting by each column, filtering, and
painting the visible rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from modelmanager.core.ids import content_id
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest
from modelmanager.core.repo.versions import manifest_key, utc_now
from modelmanager.gui.models import RepoTreeModel
from modelmanager.services import history, init_repository, open_workspace


def build(root: Path, models: int, versions: int) -> None:
    ws = init_repository(root)
    data = b"tiny checkpoint"
    cid = content_id(data)
    with ws.repo.writer():
        ws.repo.chunks.put(cid, data)
        ws.repo.chunks.flush()
        for i in range(models):
            name = f"org{i % 37}/model-{i:04d}"
            for seq in range(1, versions + 1):
                files = (
                    FileRecord("weights.bin", len(data), "generic", (ChunkRef(cid, len(data)),)),
                )
                m = Manifest(name, seq, seq - 1 or None, utc_now(), f"version {seq}",
                             {"architecture": "Tiny"}, files)  # fmt: skip
                labels = ("prod",) if seq == versions else ()
                size = ws.repo.commit_version(m, labels)
                ws.catalog.add_version(manifest_key(name, seq), m, size)
    ws.close()


def open_and_list(root: Path) -> tuple[float, float, float]:
    """Seconds to open (with sync), to read the catalog, and to fill the tree."""
    t0 = time.perf_counter()
    ws = open_workspace(root)
    t1 = time.perf_counter()
    models = history.list_models(ws)
    versions = {m.name: ws.catalog.versions(m.name) for m in models}
    t2 = time.perf_counter()
    tree = RepoTreeModel()
    tree.populate(str(root), root.name, models, versions)
    t3 = time.perf_counter()
    ws.close()
    return t1 - t0, t2 - t1, t3 - t2


def tensor_table(base: Path, n: int) -> None:
    """Time the Tensors tab on a version of ``n`` tensors (a real import of a real file)."""
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QTableView

    from modelmanager.gui.tensor_table import TensorTableModel, tensor_rows
    from modelmanager.services.importing import import_paths
    from tests.support.builders import write_safetensors

    rng = np.random.default_rng(0)
    src = base / "many.safetensors"
    names = [f"blocks.{i // 100}.t{i % 100}.weight" for i in range(n)]
    write_safetensors(src, {k: rng.standard_normal(4).astype(np.float32) for k in names})
    ws = init_repository(base / "tensors-repo")
    import_paths(ws, [src], "many")
    details = history.version_details(ws, "many")
    model, view = TensorTableModel(), QTableView()
    view.setModel(model)
    view.setSortingEnabled(True)
    view.resize(880, 700)
    view.show()

    def timed(label: str, fn: object) -> None:
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        QApplication.processEvents()
        print(f"  {label:32} {1000 * (time.perf_counter() - start):7.0f} ms")

    print(f"tensors tab, {n} rows:")
    start = time.perf_counter()
    rows = tensor_rows(details)  # in the app this runs in the job that reads the version
    print(f"  {'build rows (job thread)':32} {1000 * (time.perf_counter() - start):7.0f} ms")
    timed("fill model (UI thread)", lambda: model.set_rows(rows))
    for col, name in enumerate(("name", "dtype", "shape", "parameters", "bytes", "stored")):
        timed(
            f"sort by {name}", lambda col=col: view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
        )
    timed("filter 'blocks.7'", lambda: model.set_filter("blocks.7"))
    timed("clear filter", lambda: model.set_filter(""))
    timed("scroll to the end and paint", lambda: (view.scrollToBottom(), view.repaint()))
    ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--tensors", type=int, default=100_000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    base = Path(tempfile.mkdtemp(prefix="mm-listing-"))
    os.environ["MODELMANAGER_CACHE"] = str(base / "cache")
    try:
        start = time.perf_counter()
        build(base / "repo", args.models, args.versions)
        print(f"built {args.models} models x {args.versions} versions in "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        for label in ("warm catalog", "warm catalog", "cold catalog (rebuilt)"):
            if label.startswith("cold"):
                shutil.rmtree(base / "cache")
            opening, reading, filling = open_and_list(base / "repo")
            total = opening + reading + filling
            print(f"{label:24} open+sync {opening:.3f} s, catalog {reading:.3f} s, "
                  f"tree {filling:.3f} s: total {total:.3f} s")  # fmt: skip
        if args.tensors:
            tensor_table(base, args.tensors)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        del app


if __name__ == "__main__":
    main()
