"""The library's filter bar: the CLI's filters typed into the search box show the versions
the command line lists for the same query (real widgets, real CLI subprocess)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QStandardPaths

from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.models import REF_ROLE
from modelmanager.services import Workspace, open_workspace
from tests.conftest import subprocess_env
from tests.gui.windows import shown_window
from tests.support.fact_models import build_repository

QStandardPaths.setTestModeEnabled(True)

QUERIES = [
    "--arch llama",
    "--dtype bf16",
    "--format gguf",
    "--label prod",
    "--params 100K..200K",
    "--size '>400KiB'",
    "--newer 1h --params <1K",
    "tiny --label prod",
    "tiny --format safetensors --sort size",
    "--older 1h",
]


@pytest.fixture
def facts_ws(tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(build_repository(tmp_path))
    yield ws
    ws.close()


def _shown_versions(win: MainWindow, parent: QModelIndex | None = None) -> set[str]:
    """The version rows the tree shows (under every row, expanded or not)."""
    parent = parent or QModelIndex()
    found: set[str] = set()
    if parent.isValid() and win.proxy.canFetchMore(parent):
        win.proxy.fetchMore(parent)  # what opening the row does: its versions' rows are made
    for r in range(win.proxy.rowCount(parent)):
        index = win.proxy.index(r, 0, parent)
        ref = index.data(REF_ROLE)
        if ref and "@" in ref:
            found.add(ref)
        found |= _shown_versions(win, index)
    return found


def _cli_refs(repo: Path, tmp_path: Path, query: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(repo), "search", "--json",
         *shlex.split(query)],
        capture_output=True, text=True, env=subprocess_env(tmp_path), check=True,
    )  # fmt: skip
    return {v["ref"] for v in json.loads(proc.stdout)}


def test_the_filter_bar_shows_what_the_command_line_lists(  # type: ignore[no-untyped-def]
    qtbot, facts_ws: Workspace, tmp_path: Path
) -> None:
    with shown_window(qtbot, facts_ws) as win:
        everything = _shown_versions(win)
        assert len(everything) == 4
        for query in QUERIES:
            expected = _cli_refs(facts_ws.repo.root, tmp_path, query)
            win.search.setText(query)
            qtbot.waitUntil(lambda q=query: win.proxy.text == q and not win.runner.running())
            assert _shown_versions(win) == expected, query
            assert win.library_search.problem == ""
        assert _shown_versions(win) == set()  # --older 1h: nothing this young is old
        win.search.clear()
        qtbot.waitUntil(lambda: win.proxy.text == "")
        assert _shown_versions(win) == everything


def test_a_bad_filter_is_one_line_and_leaves_the_tree_as_it_was(  # type: ignore[no-untyped-def]
    qtbot, facts_ws: Workspace
) -> None:
    with shown_window(qtbot, facts_ws) as win:
        reported: list[str] = []  # what the window's status line says
        win.statusBar().messageChanged.connect(reported.append)
        win.search.setText("--arch llama")
        qtbot.waitUntil(lambda: win.proxy.text == "--arch llama" and not win.runner.running())
        shown = _shown_versions(win)
        win.search.setText("--arch llama --params 6X")
        qtbot.waitUntil(lambda: bool(win.library_search.problem))
        assert win.library_search.problem == (
            "--params: unknown unit 'X' in '6X' (units: k, m, b, g, t)"
        )
        assert reported[-1] == win.library_search.problem
        assert _shown_versions(win) == shown
        win.search.setText("--arch llama --params 6K..")
        qtbot.waitUntil(lambda: not win.library_search.problem and not win.runner.running())
        assert reported[-1] == ""
