"""The window's jobs go through the lanes: queued writes can be dropped, waits are shown."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressBar, QPushButton

from modelmanager.core.jobs import JobContext
from modelmanager.gui.jobs_bridge import CANCELLED, DONE, QUEUED
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace, history
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.support.builders import small_model, tree_state, write_safetensors
from tests.support.lock_holder import writer_lock_held


def _state(win: MainWindow, row: int) -> str:
    """The state cell of the Jobs table's ``row``."""
    item = win.jobs_table.item(row, 3)
    assert item is not None
    return item.text()


def _click_cancel(qtbot, win: MainWindow, job_id: int) -> None:  # type: ignore[no-untyped-def]
    button = win.jobs_table.cellWidget(win.jobs_table.rows[job_id], 4)
    assert isinstance(button, QPushButton)
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_a_queued_write_cancelled_in_the_jobs_tab_never_runs(  # type: ignore[no-untyped-def]
    qtbot, one_model_window: MainWindow, ws: Workspace
) -> None:
    go = threading.Event()
    ran: list[str] = []

    def first(_ctx: JobContext) -> None:
        ran.append("first")
        assert go.wait(30)

    root = ws.repo.root
    busy = one_model_window.runner.submit("Write first", first, writes=root)
    qtbot.waitUntil(lambda: ran == ["first"])
    queued = one_model_window.runner.submit(
        "Write second", lambda _ctx: ran.append("second"), writes=root
    )
    row = one_model_window.jobs_table.rows[queued.id]
    assert queued.state == QUEUED
    assert _state(one_model_window, row) == QUEUED
    bar = one_model_window.jobs_table.cellWidget(row, 1)
    assert isinstance(bar, QProgressBar)
    assert bar.text() == "waiting for Write first…"  # the write it queues behind on the lane
    _click_cancel(qtbot, one_model_window, queued.id)
    qtbot.waitUntil(lambda: queued.state == CANCELLED)
    assert _state(one_model_window, row) == CANCELLED
    assert bar.text() == "0%"
    third = one_model_window.runner.submit(
        "Write third", lambda _ctx: ran.append("third"), writes=root
    )
    go.set()
    qtbot.waitUntil(lambda: busy.state == DONE and third.state == DONE)
    assert ran == ["first", "third"]  # the lane went on past the dropped job


def test_a_write_waiting_for_another_process_says_so_and_cancel_stops_it(  # type: ignore[no-untyped-def]
    qtbot, one_model_window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    src = write_safetensors(tmp_path / "n" / "model.safetensors",
                            small_model(np.random.default_rng(1), n=2))  # fmt: skip
    with writer_lock_held(ws.repo.root, subprocess_env(tmp_path)) as holder:
        before = tree_state(ws.repo.root)
        job = one_model_window.runner.submit(
            "Import n", lambda ctx: import_paths(ws, [src], "m", ctx=ctx, lock_timeout=600),
            writes=ws.repo.root,
        )  # fmt: skip
        qtbot.waitUntil(lambda: job.id in one_model_window.jobs_table.rows and job.waiting != "")
        bar = one_model_window.jobs_table.cellWidget(one_model_window.jobs_table.rows[job.id], 1)
        assert isinstance(bar, QProgressBar)
        assert bar.text() == "waiting for another writer…"
        assert "waiting for the writer lock held by process" in bar.toolTip()
        _click_cancel(qtbot, one_model_window, job.id)
        qtbot.waitUntil(lambda: job.state == CANCELLED)  # while the lock is still held
        assert bar.text() != "waiting for another writer…"
        holder.release()
    assert tree_state(ws.repo.root) == before
    assert [v.seq for v in history.log(ws, "m")] == [1]
