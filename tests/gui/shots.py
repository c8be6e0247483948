"""What every tests/gui/take_*.py screenshot script does around its pictures: a throwaway
folder that stands for the user's data and cache, the window opened on a repository and
waited for, a picture saved, the window closed and the folder removed.

Each script: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_NAME OUT_DIR``
(OUT_DIR defaults to docs/screenshots).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

from modelmanager import paths
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace


def wait(app: QApplication, ready: Callable[[], bool], limit: int = 3000) -> None:
    """Turn the event loop until ``ready`` (10 ms between turns, ``limit`` turns at most)."""
    for _ in range(limit):
        app.processEvents()
        if ready():
            return
        app.thread().msleep(10)
    raise TimeoutError("the window did not get there")


def settle(app: QApplication, turns: int = 10) -> None:
    """A few turns of the event loop: what was just shown lays itself out and paints."""
    for _ in range(turns):
        app.processEvents()


def save(widget: QWidget, out: Path, name: str) -> None:
    """Save ``widget`` as it is drawn now to ``out/name``, and say where."""
    out.mkdir(parents=True, exist_ok=True)
    widget.grab().save(str(out / name))
    print(out / name)


@contextmanager
def throwaway(prefix: str = "mm-shots-", *, stores: bool = False) -> Iterator[Path]:
    """A temporary folder holding the user's data and cache (and, with ``stores``, the
    Hugging Face and Ollama stores) while the pictures are taken; removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ[paths.ENV_DATA], os.environ[paths.ENV_CACHE] = str(tmp / "data"), str(tmp / "c")
    if stores:
        os.environ["HF_HUB_CACHE"], os.environ["OLLAMA_MODELS"] = str(tmp / "hf"), str(tmp / "ol")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def application() -> QApplication:
    """The running QApplication, made when there is none."""
    app = QApplication.instance()
    return app if isinstance(app, QApplication) else QApplication(sys.argv)


def open_window(
    app: QApplication,
    ws: Workspace,
    size: tuple[int, int] | None = None,
    ready: Callable[[MainWindow], bool] = lambda win: win.tree_model.rowCount() > 0,
) -> MainWindow:
    """The window on ``ws`` as a person sees it (no user settings read or written), shown,
    once ``ready`` and no job runs."""
    win = MainWindow(ws, remember=False)
    win.ask_before_close = False  # a closing window asks nothing of a script
    if size is not None:
        win.resize(*size)
    win.show()
    wait(app, lambda: ready(win) and not win.runner.running())
    return win


def show_first_version(app: QApplication, win: MainWindow) -> None:
    """Select the first model's newest version and wait until every tab shows it."""
    win.select_first_model()
    wait(app, lambda: win.details is not None and not win.runner.running())


def close(win: MainWindow, ws: Workspace | None = None) -> None:
    """Stop the window's jobs, close it, and close ``ws``."""
    win.runner.cancel_all_and_wait()
    win.close()
    if ws is not None:
        ws.close()


def out_dir() -> Path:
    """Where a script saves its pictures: its first argument, else docs/screenshots."""
    return Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
