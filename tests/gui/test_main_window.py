"""The desktop app, driven through its real widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QStandardPaths, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QImage

from modelmanager.core.jobs import JobContext
from modelmanager.gui import TABS
from modelmanager.gui.jobs_bridge import CANCELLED, DONE, FAILED
from modelmanager.gui.main_window import MainWindow
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.conftest import subprocess_env
from tests.gui.windows import select_ref as _select
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, raw_safetensors, small_model, write_safetensors

QStandardPaths.setTestModeEnabled(True)  # QSettings of tests never touch the user's


@pytest.fixture
def window(qtbot, ws: Workspace, tmp_path: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    src = hf_folder(tmp_path / "tiny", np.random.default_rng(1), shards=2)
    import_paths(ws, [src], "acme/tiny", message="base", labels=["prod"])
    import_paths(ws, [src], "acme/tiny", message="again")
    with shown_window(qtbot, ws) as win:
        yield win


def test_tabs_show_the_selected_version(qtbot, window: MainWindow, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    assert window.stack.currentIndex() == 1  # not the empty state
    _select(qtbot, window, "acme/tiny@1")
    m = ws.repo.resolve("acme/tiny@1")
    assert window.overview_tab.ov["Version"].text() == "acme/tiny@1"
    assert window.overview_tab.ov["Labels"].text() == "prod"
    assert window.overview_tab.ov["Parameters"].text() == "74.0k"
    assert window.overview_tab.ov["Architecture"].text() == "TinyForCausalLM"
    assert window.overview_tab.ov["Memory: inference"].text() == "289.5 KiB"
    assert window.history.rowCount() == 2
    assert [window.history.item(r, 0).text() for r in range(2)] == ["@2", "@1"]
    assert window.tensors_tab.tensor_model.rowCount() == len(m.tensors) == 8
    table = window.tensors_tab.tensor_model
    names = [table.index(r, 0).data() for r in range(table.rowCount())]
    assert names == sorted(names)
    window.tensors_tab.tensor_filter.setText("mlp")
    assert table.rowCount() == 2
    window.tensors_tab.tensor_view.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # parameters
    params = [table.index(r, 3).data(Qt.ItemDataRole.UserRole) for r in range(2)]
    assert params == sorted(params, reverse=True)
    assert all("mlp" in table.index(r, 0).data() for r in range(2))
    window.tensors_tab.tensor_filter.setText("")
    assert table.rowCount() == len(m.tensors)


def test_search_filters_the_tree(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    for text, models in (("nothing-like-this", 0), ("tiny", 1)):
        window.search.setText(text)  # the catalog answers in a job
        qtbot.waitUntil(lambda text=text: window.proxy.text == text and not window.runner.running())
        repo = window.proxy.index(0, 0)
        assert window.proxy.rowCount(repo) == models


def _drop(win: MainWindow, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(QPoint(400, 300)), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    win.dropEvent(event)


def test_files_the_desktop_opens_arrive_as_one_import_dialog(
    qtbot, qapp, window: MainWindow, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """macOS hands a double-clicked (associated) file over as a FileOpen event."""
    from PySide6.QtGui import QFileOpenEvent

    from modelmanager.gui.app import FileOpenHandler

    files = [tmp_path / "a.safetensors", tmp_path / "b.gguf"]
    handler = FileOpenHandler(window)
    qapp.installEventFilter(handler)
    try:
        for f in files:
            qapp.sendEvent(qapp, QFileOpenEvent(str(f)))
        qtbot.waitUntil(lambda: window.imports.dialog is not None)
        assert window.imports.dialog.paths == files  # both files, one dialog
        window.imports.dialog.reject()
    finally:
        qapp.removeEventFilter(handler)


def test_dropping_files_opens_the_dialog_and_imports(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "my-new-model"
    write_safetensors(folder / "model.safetensors", {"w": np.ones((64, 64), np.float32)})
    _drop(window, [folder])
    qtbot.waitUntil(lambda: window.imports.dialog is not None)
    dialog = window.imports.dialog
    assert dialog.model.currentText() == "my-new-model"
    dialog.message.setText("dropped in")
    dialog.labels.setText("prod, rc1")
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        dialog.accept()
    qtbot.waitUntil(
        lambda: "my-new-model" in window.imports.existing_models() and not window.runner.running()
    )
    job = next(j for j in window.runner.jobs.values() if j.title == "Import my-new-model")
    assert job.state == DONE
    assert window.jobs_table.item(0, 0).text() == "Import my-new-model"


def test_a_failing_import_shows_its_error(qtbot, window: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = raw_safetensors(tmp_path / "broken.safetensors", b"{not json")
    _drop(window, [bad])
    qtbot.waitUntil(lambda: window.imports.dialog is not None)
    with qtbot.waitSignal(window.runner.failed, timeout=30_000) as blocker:
        window.imports.dialog.accept()
    assert "broken.safetensors" in blocker.args[1]
    job = window.runner.jobs[blocker.args[0]]
    assert job.state == FAILED
    row = window.jobs_table.rows[job.id]
    assert "not valid JSON" in window.jobs_table.item(row, 3).text()


def test_cancel_stops_a_running_job(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    def slow(ctx: JobContext) -> None:
        for i in range(10_000):
            ctx.report(i, 10_000, "working")
            ctx.check()
            ctx.cancel_event.wait(0.01)
        raise AssertionError("never cancelled")

    job = window.runner.submit("Slow job", slow)
    qtbot.waitUntil(lambda: job.done > 0)
    window.runner.cancel(job.id)
    qtbot.waitUntil(lambda: job.state == CANCELLED)
    assert job.error == ""


def test_the_empty_state_says_what_to_do(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from modelmanager.services import init_repository

    empty = init_repository(tmp_path / "empty")
    win = MainWindow(empty, remember=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.runner.running())
    assert win.stack.currentIndex() == 0
    assert "Drop a checkpoint" in win.empty.text()
    empty.close()


def _screenshot(tmp_path: Path, ws: Workspace, tab: str) -> QImage:
    """``modelmanager gui --screenshot`` of ``tab``, run as a person would, read back."""
    png = tmp_path / f"{tab}.png"
    env = subprocess_env(tmp_path, QT_QPA_PLATFORM="offscreen")
    subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(ws.repo.root), "gui",
         "--screenshot", str(png), "--tab", tab],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return QImage(str(png))


def _pixels(image: QImage, left: int, top: int, right: int, bottom: int) -> list[int]:
    """Every second pixel of a rectangle (enough to see what is drawn there, and quick)."""
    return [image.pixel(x, y) for y in range(top, bottom, 2) for x in range(left, right, 2)]


@pytest.mark.parametrize("tab", TABS)
def test_screenshot_of_every_tab_from_the_command_line(
    tmp_path: Path, ws: Workspace, tab: str
) -> None:
    from collections import Counter

    from modelmanager.gui.tabs.layout import COLOURS

    src = hf_folder(tmp_path / "tiny", np.random.default_rng(1), shards=1)
    import_paths(ws, [src], "acme/tiny")
    image = _screenshot(tmp_path, ws, tab)
    assert (image.width(), image.height()) == (1280, 800)
    # The tab's page (right of the tree) holds drawn things, not one flat colour.
    page = _pixels(image, 410, 90, 1270, 770)
    counts = Counter(page)
    assert len(counts) >= 50
    assert 1 - counts.most_common(1)[0][1] / len(page) >= 0.015
    # The tree lists the model and shows it selected (a row in the highlight colour).
    tree = _pixels(image, 5, 100, 395, 160)
    assert sum(1 for p in tree if QColor(p).saturation() > 100) >= 1000
    if tab == "layout":  # the grid: one green cell per healthy chunk
        ok = COLOURS["ok"].rgb()
        assert sum(1 for p in page if p == ok) >= 100
    if tab != "overview":  # the page shown is the one asked for, not the first
        overview = _pixels(_screenshot(tmp_path, ws, "overview"), 410, 90, 1270, 770)
        assert sum(1 for a, b in zip(page, overview, strict=True) if a != b) / len(page) >= 0.01


def test_rollback_by_moving_a_label_and_comparing_versions(
    qtbot, window: MainWindow, ws: Workspace
) -> None:  # type: ignore[no-untyped-def]
    _select(qtbot, window, "acme/tiny@2")
    job = window.history.move_label("acme/tiny@2", "prod")
    qtbot.waitUntil(lambda: job.state == DONE)
    assert ws.repo.resolve("acme/tiny@prod").seq == 2
    assert "(was @1)" in window.statusBar().currentMessage()
    job = window.history.move_label("acme/tiny@1", "prod")  # roll back
    qtbot.waitUntil(lambda: job.state == DONE)
    assert ws.repo.resolve("acme/tiny@prod").seq == 1
    qtbot.waitUntil(lambda: not window.runner.running())
    window.history.selectAll()
    assert window.history.selected_versions() == ["acme/tiny@2", "acme/tiny@1"]
    job = window.history.compare("acme/tiny@1", "acme/tiny@2")
    qtbot.waitUntil(lambda: job.state == DONE and hasattr(window.history, "diff_text"))
    assert "0 added, 0 removed, 0 changed, 8 unchanged" in window.history.diff_text


def test_the_ui_thread_stays_responsive_during_a_large_import(tmp_path: Path) -> None:
    """A 10 ms timer on the UI thread keeps ticking while 256 MiB are imported.

    Runs the real window in a child process (see responsiveness_probe.py for why). What this
    guards against is work on the UI thread: an import there (or a long call holding the GIL)
    stops the timer for seconds. The bounds leave room for a busy 2-core machine, where one
    scheduling hiccup of 100-150 ms was seen while other tests ran (a strict 100 ms bound on
    the longest wait failed then): most waits stay short, none reaches a second.
    """
    import json

    probe = Path(__file__).with_name("responsiveness_probe.py")
    env = subprocess_env(tmp_path, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, str(probe), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"UI timer: {result['ticks']} ticks, longest wait {result['longest_ms']} ms, "
          f"95 % within {result['p95_ms']} ms")  # fmt: skip
    assert result["state"] == DONE, result["error"]
    assert result["ticks"] > 20
    assert result["p95_ms"] < 50
    assert result["longest_ms"] < 1000


def test_devices_tab_lists_adds_and_takes_devices_offline(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tab = window.devices_tab
    qtbot.waitUntil(lambda: len(tab.infos) == 1 and not window.runner.running())
    assert tab.table.item(0, 0).text() == "main"
    tab.add(tmp_path / "disk1")
    qtbot.waitUntil(lambda: len(tab.infos) == 2 and not window.runner.running())
    assert [tab.table.item(r, 0).text() for r in range(2)] == ["main", "disk1"]
    assert tab.table.item(1, 1).text() == "online"
    tab.table.selectRow(1)
    tab.toggle_selected()
    qtbot.waitUntil(
        lambda: not window.runner.running() and tab.table.item(1, 1).text() == "offline"
    )
    assert window.ws.repo.devices.get("disk1").state == "offline"

    tab.toggle_selected()  # online again, then drained: the preview comes first
    qtbot.waitUntil(lambda: not window.runner.running() and tab.table.item(1, 1).text() == "online")
    tab.table.selectRow(1)
    tab.drain_selected()
    qtbot.waitUntil(lambda: getattr(tab, "drain_box", None) is not None)
    assert "Moves" in tab.drain_box.text()
    assert len(tab.infos) == 2  # nothing happens before the answer
    go = next(b for b in tab.drain_box.buttons() if b.text() == "Drain and remove")
    go.click()
    qtbot.waitUntil(lambda: len(tab.infos) == 1 and not window.runner.running())
    assert [d.name for d in window.ws.repo.devices.devices] == ["main"]


def test_shard_layout_shows_which_device_holds_what_and_health(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from modelmanager.services.devices import add_device
    from modelmanager.services.policies import set_policy

    ws = window.ws
    add_device(ws, tmp_path / "disk1", name="disk1")
    set_policy(ws, "copies=2")
    _select(qtbot, window, "acme/tiny@2")
    qtbot.waitUntil(lambda: not window.runner.running())
    data = window.layout_tab.grid.layout_data
    assert data is not None
    assert data.devices == ("main", "disk1")
    assert all(c.health == "ok" and set(c.pieces) == {"main", "disk1"} for c in data.chunks)
    assert "0 degraded" in window.layout_tab.summary.text()
    shutil.rmtree(tmp_path / "disk1" / "chunks")
    window.tree.setCurrentIndex(window.proxy.index(0, 0))  # away, then back: reload
    _select(qtbot, window, "acme/tiny@1")
    qtbot.waitUntil(lambda: not window.runner.running())
    data = window.layout_tab.grid.layout_data
    assert data is not None
    assert all(c.health == "degraded" and set(c.pieces) == {"main"} for c in data.chunks)
    assert window.layout_tab.grid.cell_at(QPoint(95, 5)) == (0, 0)


def test_another_repository_opens_in_the_tree_and_the_tabs_follow_it(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    from modelmanager.gui.models import REMOTES, STORES
    from modelmanager.services import init_repository

    other = init_repository(tmp_path / "other")
    write_safetensors(tmp_path / "o.safetensors", {"w": np.ones((64, 64), np.float32)})
    import_paths(other, [tmp_path / "o.safetensors"], "other-model")
    other.close()
    top = [window.tree_model.item(r, 0).text() for r in range(window.tree_model.rowCount())]
    assert top == ["repo", STORES, REMOTES]  # the stores' and remotes' places from the start
    with qtbot.waitSignal(window.runner.succeeded, timeout=30_000):
        window.repositories.open(tmp_path / "other")
    qtbot.waitUntil(lambda: window.tree_model.rowCount() == 4 and not window.runner.running())
    top = [window.tree_model.item(r, 0).text() for r in range(window.tree_model.rowCount())]
    assert top == ["repo", "other", STORES, REMOTES]
    _select(qtbot, window, "other-model@1")
    assert window.ws.repo.root == (tmp_path / "other").resolve()
    assert window.overview_tab.ov["Parameters"].text() == "4.1k"
    assert window.imports.existing_models() == ["other-model"]
    assert window.close_repo_action.isEnabled()
    assert window.repositories.open(tmp_path / "other") is None  # listed once only
    window.close_repository(str((tmp_path / "other").resolve()))
    assert str(window.ws.repo.root) == window.repositories.default_key
    assert window.tree_model.rowCount() == 3
    assert not window.close_repo_action.isEnabled()


def test_import_dialog_sets_a_redundancy_policy_and_refuses_a_bad_one(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, ws: Workspace, tmp_path: Path
) -> None:
    from modelmanager.services.devices import add_device

    add_device(ws, tmp_path / "second", name="second")
    src = tmp_path / "p.safetensors"
    write_safetensors(src, {"w": np.arange(4096, dtype=np.float32)})
    dialog = window.imports.open_dialog([src])
    assert dialog.policy.currentText() == "repository default (copies=1)"
    dialog.policy.setCurrentText("ec=0+1")
    dialog._check_and_accept()
    assert dialog.isVisible()
    assert "ec" in dialog.error.text()
    dialog.policy.setCurrentText("copies=2")
    dialog._check_and_accept()
    qtbot.waitUntil(lambda: not window.runner.running(), timeout=30_000)
    jobs = [j for j in window.runner.jobs.values() if j.title == "Import p"]
    assert [(j.state, j.error) for j in jobs] == [(DONE, "")]
    assert str(ws.repo.policy_for("p")) == "copies=2"
    assert ws.repo.chunks.locate(ws.repo.resolve("p").files[0].chunks[0].id).tolerance() == 1


def test_memory_estimate_follows_the_chosen_dtype(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _select(qtbot, window, "acme/tiny@1")
    ov = window.overview_tab.ov
    assert ov["Memory: inference"].text() == "289.5 KiB"  # 74.1k fp32 parameters
    window.overview_tab.estimate_dtype.setCurrentText("BF16")
    assert ov["Memory: inference"].text() == "144.5 KiB"
    assert ov["Memory: training (Adam)"].text() == "1.1 MiB"  # 16 bytes a parameter
    window.overview_tab.estimate_dtype.setCurrentText("Q4")
    assert ov["Memory: training (Adam)"].text().startswith("— (not trained")


def test_closing_with_jobs_running_asks_and_no_keeps_the_window(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from PySide6.QtWidgets import QMessageBox

    release = threading.Event()
    job = window.runner.submit("Long job", lambda ctx: (release.wait(30), ctx.check()))
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []

    def question(_parent: object, _title: str, text: str) -> QMessageBox.StandardButton:
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    window.ask_before_close = True
    assert not window.close()
    assert window.isVisible()
    qtbot.waitUntil(lambda: job.state == "running")  # queued until its thread takes it
    assert "1 job still running" in asked[0]  # "1 job", not "1 jobs"
    job.ctx.cancel()
    release.set()
    qtbot.waitUntil(lambda: job.state == CANCELLED)
    assert window.close()  # nothing running now: no question
    assert len(asked) == 1


def test_remotes_appear_in_the_tree_and_push_pull_run_as_jobs(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    from modelmanager.gui.models import REMOTE_ROLE, REMOTES
    from modelmanager.services import init_repository
    from modelmanager.services.remotes import add_remote

    add_remote("shared", f"file://{tmp_path / 'shared'}")
    job = window.remotes.push("acme/tiny@2", "shared")
    qtbot.waitUntil(lambda: job.state in (DONE, FAILED), timeout=30_000)
    assert job.state == DONE, job.error
    assert any(window.jobs_table.item(r, 0).text() == "Push acme/tiny@2 to shared"
               for r in range(window.jobs_table.rowCount()))  # fmt: skip
    qtbot.waitUntil(lambda: not window.runner.running())
    remotes_root = window.tree_model.item(window.tree_model.rowCount() - 1, 0)
    assert remotes_root.text() == REMOTES
    shared = remotes_root.child(0, 0)
    assert shared.data(REMOTE_ROLE) == ("shared", None)
    version = shared.child(0, 0).child(0, 0)
    assert version.data(REMOTE_ROLE) == ("shared", "acme/tiny@2")
    empty = init_repository(tmp_path / "empty")
    win = MainWindow(empty, remember=False)
    win.ask_before_close = False
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.runner.running())
    job = win.remotes.pull("shared", "acme/tiny@2")
    qtbot.waitUntil(lambda: job.state in (DONE, FAILED), timeout=30_000)
    assert job.state == DONE, job.error
    qtbot.waitUntil(lambda: win.imports.existing_models() == ["acme/tiny"])
    assert empty.repo.resolve("acme/tiny").seq == 2
    win.runner.cancel_all_and_wait()
    empty.close()


def test_a_push_whose_number_another_repository_took_says_where_it_went(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """Another repository pushed acme/tiny@1 first: the window's push claims the next number
    and the status line says so (nothing is overwritten)."""
    from modelmanager.services import init_repository
    from modelmanager.services.importing import import_paths
    from modelmanager.services.remotes import add_remote, open_remote, push

    add_remote("shared", f"file://{tmp_path / 'shared'}")
    other = init_repository(tmp_path / "other")
    src = tmp_path / "other-src"
    write_safetensors(src / "model.safetensors", small_model(np.random.default_rng(99)))
    import_paths(other, [src], "acme/tiny")
    push(other, "acme/tiny@1", open_remote("shared"))
    other.close()
    job = window.remotes.push("acme/tiny@1", "shared")
    qtbot.waitUntil(lambda: job.state in (DONE, FAILED), timeout=30_000)
    assert job.state == DONE, job.error
    message = window.statusBar().currentMessage()
    assert message.startswith("Pushed acme/tiny@1 to shared as acme/tiny@2")
    assert "the remote already has acme/tiny@1 from another repository" in message
    assert open_remote("shared").version_numbers("acme/tiny") == [1, 2]
