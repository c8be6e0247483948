"""How soon the window shows a large repository, and a version of 100,000 tensors (issue 18).

    QT_QPA_PLATFORM=offscreen python benchmarks/window_start.py [--models 1000] [--versions 5]
        [--tensors 100000] [--keep DIR]

With --keep DIR the repositories (and the catalog) are made in DIR and kept: a later run with
the same DIR and sizes times them again without building (10,000 models take minutes to make).

Builds N models x V versions (real manifests, one shared chunk: the listing reads no chunk),
then times the real window (``MainWindow`` over ``open_unsynced``, as ``modelmanager gui``
opens it), with the catalog warm and then deleted:

- ``appear``: from opening the repository to the window shown (what the UI thread does first);
- ``full tree``: until every model is in the tree (a lost catalog is rebuilt in a job
  meanwhile, the window answering);
- ``at rest``: until, besides, no job runs: the catalog's catch-up and, where the catalog lacks
  a model's size on disk (the first start after a rebuild), the measurement and the re-read of
  the tree it leads to.

With --tensors N it imports one safetensors file of N tensors and times selecting it in the
tree until the Tensors tab holds every row (the whole selection path: manifest, chunk sizes
and codecs, layout, tensor rows, filling the table), then selecting it again through its
model's row (the manifest cache: read and hashed, not parsed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from benchmarks.gui_listing import build
from modelmanager import paths
from modelmanager.core.catalog import catalog_path
from modelmanager.gui.controllers.repositories import open_unsynced
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE


def wait(app: QApplication, done: Callable[[], bool], limit: float = 600.0) -> float:
    """Process events until ``done()``; the seconds it took."""
    start = time.perf_counter()
    while not done():
        app.processEvents()
        if time.perf_counter() - start > limit:
            raise TimeoutError("the window did not get there")
        time.sleep(0.01)  # a poll, not a spin: the job it waits for needs the GIL
    return time.perf_counter() - start


def models_listed(win: MainWindow) -> int:
    """How many model rows the repository shows. A count, not a list of their names: polled
    every few ms, a walk of 10,000 rows took half the UI thread's time (and the GIL from the
    job it waits for), and the benchmark measured itself."""
    model = win.tree_model
    row = model.repo_row(str(win.ws.repo.root))
    return model.item(row, 0).rowCount() if row is not None else 0


#: --jobs: after each start, print how long its slowest jobs took (what "full tree" waits for).
SHOW_JOBS = False


def start(app: QApplication, root: Path, models: int) -> tuple[float, float, float]:
    """Seconds to the window shown, to the full tree (every model listed) and to the window
    at rest (no job left: sizes on disk measured, the tree read again where one moved)."""
    t0 = time.perf_counter()
    win = MainWindow(open_unsynced(root), remember=False)
    win.ask_before_close = False
    win.show()
    app.processEvents()
    appear = time.perf_counter() - t0
    wait(app, lambda: models_listed(win) == models)
    full = time.perf_counter() - t0
    wait(app, lambda: models_listed(win) == models and not win.runner.running())
    rest = time.perf_counter() - t0
    if SHOW_JOBS:
        took = sorted(((j.ended or j.started) - j.started, j.title)
                      for j in win.runner.jobs.values())  # fmt: skip
        print("   jobs:", "; ".join(f"{title} {s:.2f} s" for s, title in took[::-1][:6]))
    win.runner.cancel_all_and_wait()
    win.ws.close()
    win.close()
    win.deleteLater()
    app.processEvents()
    return appear, full, rest


def select_tensors(app: QApplication, base: Path, n: int) -> tuple[float, float]:
    """Seconds from selecting a version of ``n`` tensors to a filled Tensors tab, the first
    time and again."""
    import numpy as np

    from modelmanager.services import init_repository
    from modelmanager.services.importing import import_paths
    from tests.support.builders import write_safetensors

    rng = np.random.default_rng(0)
    src = base / "many.safetensors"
    repo = base / f"tensors-repo-{n}"
    if not repo.exists():
        names = [f"blocks.{i // 100}.t{i % 100}.weight" for i in range(n)]
        write_safetensors(src, {k: rng.standard_normal(4).astype(np.float32) for k in names})
        ws = init_repository(repo)
        import_paths(ws, [src], "many")
        ws.close()
    win = MainWindow(open_unsynced(repo), remember=False)
    win.ask_before_close = False
    win.show()
    wait(app, lambda: models_listed(win) == 1 and not win.runner.running())
    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
    index = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, "many@1", 1, flags)[0]
    table = win.tensors_tab.tensor_model
    t0 = time.perf_counter()
    win.tree.setCurrentIndex(index)
    wait(app, lambda: table.rowCount() == n)
    seconds = time.perf_counter() - t0
    wait(app, lambda: not win.runner.running())
    # Selected again (its model's row shows the same version): the manifest is not parsed again.
    win.tensors_tab.set_rows([])
    model = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, "many", 1, flags)[0]
    t0 = time.perf_counter()
    win.tree.setCurrentIndex(model)
    wait(app, lambda: table.rowCount() == n)
    again = time.perf_counter() - t0
    win.runner.cancel_all_and_wait()
    win.ws.close()
    win.close()
    return seconds, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--tensors", type=int, default=100_000)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="make (or reuse) the repositories in this folder and keep them",
    )
    parser.add_argument("--jobs", action="store_true", help="print the slowest start-up jobs")
    args = parser.parse_args()
    global SHOW_JOBS
    SHOW_JOBS = args.jobs
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication([])
    from modelmanager.gui.gc_guard import MainThreadGarbageCollector

    _collector = MainThreadGarbageCollector()  # as the app runs: collections on the UI thread
    base = args.keep or Path(tempfile.mkdtemp(prefix="mm-window-"))
    base.mkdir(parents=True, exist_ok=True)
    os.environ[paths.ENV_CACHE] = str(base / "cache")
    os.environ[paths.ENV_DATA] = str(base / "data")
    try:
        root = base / f"repo-{args.models}x{args.versions}"
        if not root.exists():
            t0 = time.perf_counter()
            build(root, args.models, args.versions)
            print(f"built {args.models} models x {args.versions} versions in "
                  f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        for label in ("warm catalog", "warm catalog", "catalog deleted"):
            if label == "catalog deleted":
                from modelmanager.core.repo.repository import Repository

                catalog = catalog_path(paths.cache_dir(), Repository.open(root))
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{catalog}{suffix}").unlink(missing_ok=True)
            appear, full, rest = start(app, root, args.models)
            print(f"{label:16} window shown {appear:6.3f} s   full tree {full:6.3f} s   "
                  f"at rest {rest:6.3f} s")  # fmt: skip
        if args.tensors:
            seconds, again = select_tensors(app, base, args.tensors)
            print(f"select a version of {args.tensors:,} tensors: filled Tensors tab in "
                  f"{seconds:.3f} s (selected again: {again:.3f} s)")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
