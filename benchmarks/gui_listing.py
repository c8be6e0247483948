"""How fast a large repository opens and lists: 1,000 models x 5 versions (issue 6).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_listing.py [--models 1000] [--versions 5]

Builds the repository once (every version commits a real manifest; all share one chunk, as
the listing does not read chunks), then times, in one run, what opening the window does:
open the repository with its catalog (sync), read models and versions from the catalog, and
fill the Qt tree model. Also times a cold catalog (deleted first, rebuilt from manifests).
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
from modelmanager.core.repo.repository import manifest_key, utc_now
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
    tree.populate(root.name, models, versions)
    t3 = time.perf_counter()
    ws.close()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
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
    finally:
        shutil.rmtree(base, ignore_errors=True)
        del app


if __name__ == "__main__":
    main()
