"""GUI test setup: garbage is collected on the UI thread only, as in the app (gc_guard), and a
Qt warning fails the test, in teardown too.

pytest-qt fails a test on a Qt warning logged while it runs (``qt_log_level_fail`` in
pyproject.toml) but stops listening when the test's body ends: a warning logged while its
windows close and its jobs stop went only to stderr. The teardown hooks below catch those.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

from modelmanager.gui.gc_guard import MainThreadGarbageCollector
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.gui.windows import shown_window
from tests.support.builders import small_model, write_safetensors

if TYPE_CHECKING:
    from modelmanager.gui.main_window import MainWindow

_QUIET = (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg)
_TEARDOWN_WARNINGS = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def ui_thread_garbage_collection(qapp) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Without this, a worker thread's allocation can collect a finished test's windows."""
    collector = MainThreadGarbageCollector()
    yield
    collector.stop()
    gc.collect()


@pytest.fixture
def one_model_window(qtbot, ws: Workspace, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    """A shown window on ``ws`` holding one small model, ``m`` (two tensors): for the tests of
    the window's jobs, which need a repository but nothing particular in it."""
    src = write_safetensors(tmp_path / "m" / "model.safetensors",
                            small_model(np.random.default_rng(0), n=2))  # fmt: skip
    import_paths(ws, [src], "m")
    with shown_window(qtbot, ws) as win:
        yield win


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, Any, Any]:
    """Collect the Qt warnings logged while the test's fixtures are torn down."""
    ignore = [re.compile(p) for p in item.config.getini("qt_log_ignore")]
    seen: list[str] = []

    def handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if kind not in _QUIET and not any(p.search(message) for p in ignore):
            where = f" ({context.file}:{context.line})" if context.file else ""
            seen.append(f"{kind.name}: {message}{where}")

    previous = qInstallMessageHandler(handler)
    try:
        return (yield)
    finally:
        qInstallMessageHandler(previous)
        item.stash[_TEARDOWN_WARNINGS] = seen


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    """A teardown that logged a Qt warning fails, naming each message."""
    report = yield
    seen = item.stash.get(_TEARDOWN_WARNINGS, [])
    if call.when == "teardown" and seen and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = "Qt warnings while the test's fixtures were torn down:\n" + "\n".join(
            seen
        )
    return report
