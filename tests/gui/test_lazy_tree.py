"""The library tree at scale (issue 18): version rows made only when a model is opened, a
Changes naming one model updating that model's row alone, and the On disk column (issue 19)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTreeView

from modelmanager.core.catalog import ModelRow, VersionRow
from modelmanager.core.units import human_bytes
from modelmanager.gui.library import LibraryProxy, TreeState, find_row, library_view
from modelmanager.gui.models import (
    ON_DISK,
    REF_ROLE,
    SORT_BASE,
    TREE_COLUMNS,
    RepoTreeModel,
    repository_rows,
)
from modelmanager.services import Changes, Workspace
from modelmanager.services.history import remove_versions
from modelmanager.services.importing import import_paths
from tests.gui.windows import select_ref, shown_window
from tests.support.builders import small_model, write_safetensors


def _rows(n: int, stored: list[int | None] | None = None) -> tuple[list[ModelRow], dict[str, Any]]:
    models = [ModelRow(f"m{i:04d}", 3, 3, "2026-01-01", i, i, {}, "A", '{"f32": 4}',
                       stored[i] if stored else None) for i in range(n)]  # fmt: skip
    versions = {m.name: [VersionRow(m.name, s, None, "2026", f"v{s}", "{}", 1, 1, 1, s, {}, ())
                         for s in (3, 2, 1)] for m in models}  # fmt: skip
    return models, versions


def _view(qtbot, tree: RepoTreeModel) -> tuple[QTreeView, LibraryProxy]:  # type: ignore[no-untyped-def]
    proxy = LibraryProxy()
    proxy.setSourceModel(tree)
    view = library_view(proxy)
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    view.expandToDepth(0)
    return view, proxy


def test_version_rows_are_made_only_when_their_model_is_opened(qtbot, qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    models, versions = _rows(2000)
    tree = RepoTreeModel()
    tree.loaders["/r"] = lambda names: {n: versions[n] for n in names}
    tree.populate("/r", "r", models, {})  # the models listed, no version read
    root = tree.item(0, 0)
    assert root.rowCount() == 2000
    assert sum(root.child(r, 0).rowCount() for r in range(2000)) == 0  # no version item made
    view, proxy = _view(qtbot, tree)
    m7 = find_row(view, ("repo", "/r", "m0007"))
    assert proxy.hasChildren(m7)  # the view draws its arrow
    view.expand(m7)
    qtbot.waitUntil(lambda: proxy.rowCount(m7) == 3)
    assert [proxy.index(r, 0, m7).data(REF_ROLE) for r in range(3)] == [
        "m0007@3", "m0007@2", "m0007@1"]  # fmt: skip
    assert sum(root.child(r, 0).rowCount() for r in range(2000)) == 3  # that model's alone
    # Selecting a version of a model never opened (what a restored selection does) finds it.
    found = find_row(view, ("repo", "/r", "m1500@2"))
    assert found.data(REF_ROLE) == "m1500@2"
    qtmodeltester.check(tree)  # the tester makes every row (fetchMore) and checks them
    qtmodeltester.check(proxy)


def test_a_re_read_makes_again_the_versions_that_were_open(qtbot) -> None:  # type: ignore[no-untyped-def]
    models, versions = _rows(300)
    tree = RepoTreeModel()
    tree.loaders["/r"] = lambda names: {n: versions[n] for n in names}
    tree.populate("/r", "r", models, {})
    view, _proxy = _view(qtbot, tree)
    view.expand(find_row(view, ("repo", "/r", "m0150")))
    view.setCurrentIndex(find_row(view, ("repo", "/r", "m0150@1")))
    state = TreeState(view)
    made = {n: versions[n] for n in tree.made_models("/r")}  # read with the models, as a job does
    tree.place("/r", repository_rows("/r", "r", models, made))  # a re-read
    state.restore()
    assert view.isExpanded(find_row(view, ("repo", "/r", "m0150")))
    assert view.currentIndex().data(REF_ROLE) == "m0150@1"
    root = tree.item(0, 0)
    assert sum(1 for r in range(300) if root.child(r, 0).rowCount()) == 1  # only the one open


def test_the_on_disk_column_shows_stored_bytes_and_sorts(qtbot) -> None:  # type: ignore[no-untyped-def]
    stored: list[int | None] = [3 << 30, None, 5 << 20, 7 << 40]
    models, versions = _rows(4, stored)
    tree = RepoTreeModel()
    tree.populate("/r", "r", models, versions)
    view, proxy = _view(qtbot, tree)
    assert TREE_COLUMNS[ON_DISK] == "On disk"
    assert proxy.headerData(ON_DISK, Qt.Orientation.Horizontal) == "On disk"
    cells = {find_row(view, ("repo", "/r", m.name)).data(): find_row(
        view, ("repo", "/r", m.name)).siblingAtColumn(ON_DISK).data() for m in models}  # fmt: skip
    assert cells == {"m0000": human_bytes(3 << 30), "m0001": "…", "m0002": human_bytes(5 << 20),
                     "m0003": human_bytes(7 << 40)}  # fmt: skip
    view.sortByColumn(ON_DISK, Qt.SortOrder.DescendingOrder)
    root = proxy.index(0, 0)
    order = [proxy.index(r, 0, root).data() for r in range(proxy.rowCount(root))]
    assert order == ["m0003", "m0000", "m0002", "m0001"]  # not measured yet: last
    assert proxy.index(0, 0, root).data(SORT_BASE + ON_DISK) == 7 << 40
    m3 = proxy.index(0, 0, root)
    view.expand(m3)
    qtbot.waitUntil(lambda: proxy.rowCount(m3) == 3)
    assert proxy.index(0, ON_DISK, m3).data() == ""  # a version's chunks are shared: no figure


def _source_item(win: Any, name: str) -> Any:
    return win.tree_model.model_items(str(win.ws.repo.root))[name]


def test_a_changes_naming_one_model_updates_that_row_alone(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    for name in ("acme/a", "acme/b"):
        src = write_safetensors(tmp_path / name / "m.safetensors", small_model(rng, n=2))
        import_paths(ws, [src], name)
    key = str(ws.repo.root)
    with shown_window(qtbot, ws) as win:
        # Only the Changes given below reach the tree (the folder watch would see the writes
        # this test makes beside the window and re-read them its own way).
        win.repositories.watches[key].stop()
        select_ref(qtbot, win, "acme/a@1")
        qtbot.waitUntil(lambda: not win.runner.running())
        # The window measured what each model takes on disk (a job at start) and shows it.
        stored = ws.catalog.stored_bytes()
        assert stored["acme/a"] > 0
        a = find_row(win.tree, ("repo", key, "acme/a"))
        assert a.siblingAtColumn(ON_DISK).data() == human_bytes(stored["acme/a"])
        a_item, b_item = _source_item(win, "acme/a"), _source_item(win, "acme/b")
        src = write_safetensors(tmp_path / "b2" / "m.safetensors", small_model(rng, n=3))
        import_paths(ws, [src], "acme/b")
        src = write_safetensors(tmp_path / "c" / "m.safetensors", small_model(rng, n=1))
        import_paths(ws, [src], "acme/c")
        before = set(win.runner.jobs)
        win.apply_changes(ws, Changes(models=frozenset({"acme/b", "acme/c"})))  # as a job's
        qtbot.waitUntil(lambda: "acme/c" in win.tree_model.models_of(key)
                        and not win.runner.running())  # fmt: skip
        new = [win.runner.jobs[i].title for i in set(win.runner.jobs) - before]
        assert new == ["Read the catalog"]  # one read of two models, no re-read of the tree
        assert _source_item(win, "acme/a") is a_item  # untouched: the same row
        assert _source_item(win, "acme/b") is b_item  # updated in place
        b = find_row(win.tree, ("repo", key, "acme/b"))
        assert b.siblingAtColumn(1).data() == "2 versions"
        assert win.proxy.index(0, 1).data() == "3 models"
        assert win.tree.currentIndex().siblingAtColumn(0).data(REF_ROLE) == "acme/a@1"
        assert win.tree.isExpanded(find_row(win.tree, ("repo", key, "acme/a")))
        # A version removed from an open model: its row goes, the model's figures follow.
        win.tree.expand(b)
        qtbot.waitUntil(lambda: win.proxy.rowCount(find_row(win.tree, ("repo", key, "acme/b")))
                        == 2)  # fmt: skip
        remove_versions(ws, ["acme/b@1"])
        win.repositories.apply(key, ws, Changes(versions=("acme/b@1",)))
        qtbot.waitUntil(lambda: not find_row(win.tree, ("repo", key, "acme/b@1")).isValid()
                        and not win.runner.running())  # fmt: skip
        b = find_row(win.tree, ("repo", key, "acme/b"))
        assert b.siblingAtColumn(1).data() == "1 version"
        assert win.proxy.rowCount(b) == 1
        assert win.tree.isExpanded(b)
        # A model gone entirely: its row goes.
        remove_versions(ws, ["acme/c@1"])
        win.repositories.apply(key, ws, Changes(models=frozenset({"acme/c"})))
        qtbot.waitUntil(lambda: "acme/c" not in win.tree_model.models_of(key)
                        and not win.runner.running())  # fmt: skip
        assert win.proxy.index(0, 1).data() == "2 models"
        assert win.tree.currentIndex().siblingAtColumn(0).data(REF_ROLE) == "acme/a@1"
        assert not find_row(win.tree, ("repo", key, "acme/c")).isValid()


def test_versions_not_read_with_the_models_are_read_when_wanted(qtbot) -> None:  # type: ignore[no-untyped-def]
    """A re-read lists the models alone; a model opened reads its own versions (one call of
    the loader), a search's models come with theirs, and models open stay made across a
    re-read from versions read with it."""
    models, versions = _rows(500)
    asked: list[list[str]] = []

    def loader(names: Any) -> dict[str, Any]:
        asked.append(list(names))
        return {n: versions[n] for n in names}

    tree = RepoTreeModel()
    tree.loaders["/r"] = loader
    tree.populate("/r", "r", models, {})  # no version read
    view, proxy = _view(qtbot, tree)
    m7 = find_row(view, ("repo", "/r", "m0007"))
    assert proxy.hasChildren(m7)
    view.expand(m7)
    qtbot.waitUntil(lambda: proxy.rowCount(m7) == 3)
    assert asked == [["m0007"]]
    proxy.fetch_models("/r", ["m0001", "m0002"], {"m0001": versions["m0001"]})
    assert asked == [["m0007"], ["m0002"]]  # m0001's came with the search
    assert sorted(tree.made_models("/r")) == ["m0001", "m0002", "m0007"]
    state = TreeState(view)
    made = tree.made_models("/r")
    tree.place("/r", repository_rows("/r", "r", models, {n: versions[n] for n in made}))
    state.restore()
    assert len(asked) == 2  # the re-read brought the open models' versions
    assert view.isExpanded(find_row(view, ("repo", "/r", "m0007")))
    assert sorted(tree.made_models("/r")) == ["m0001", "m0002", "m0007"]


def test_a_label_moved_while_the_window_was_closed_shows_after_the_catch_up(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    """The catch-up compares its labels with what the listing showed (not a read of every
    model before the sync): a label the catalog did not know yet is shown once it does."""
    from modelmanager.gui.controllers.repositories import open_unsynced
    from modelmanager.gui.main_window import MainWindow

    rng = np.random.default_rng(6)
    for seq in (1, 2):
        src = write_safetensors(tmp_path / f"v{seq}" / "m.safetensors", small_model(rng, n=2))
        import_paths(ws, [src], "acme/a", labels=["prod"] if seq == 1 else [])
    root = ws.repo.root
    with ws.repo.writer():
        ws.repo.set_label("acme/a", "prod", 2)  # the catalog is not told (another process)
    ws.close()
    stale = open_unsynced(root)
    try:
        assert stale.catalog.models()[0].labels == {"prod": 1}
        win = MainWindow(stale, remember=False)
        win.ask_before_close = False
        qtbot.addWidget(win)
        key = str(root)
        win.repositories.watches[key].stop()  # the catch-up alone must bring the label
        win.show()
        qtbot.waitUntil(lambda: not win.runner.running() and key in win.repositories.model_counts)
        a = find_row(win.tree, ("repo", key, "acme/a"))
        assert a.siblingAtColumn(TREE_COLUMNS.index("Labels")).data() == "prod"
        assert win.repositories.listed_labels[key] == {"acme/a": {"prod": 2}}
        win.tree.expand(a)
        qtbot.waitUntil(lambda: win.proxy.rowCount(find_row(win.tree, ("repo", key, "acme/a")))
                        == 2)  # fmt: skip
        assert find_row(win.tree, ("repo", key, "acme/a@2")).data().startswith("@2  [prod]")
        # Moved back behind the catalog's back, the window listing it: the catch-up's labels
        # differ from the listing's, so the tree is read again.
        with stale.repo.writer():
            stale.repo.set_label("acme/a", "prod", 1)
        job = win.repositories.catch_up(key, stale)
        qtbot.waitUntil(lambda: not job.active and not win.runner.running())
        assert win.repositories.listed_labels[key] == {"acme/a": {"prod": 1}}
        assert find_row(win.tree, ("repo", key, "acme/a@1")).data().startswith("@1  [prod]")
        win.runner.cancel_all_and_wait()
    finally:
        stale.close()
