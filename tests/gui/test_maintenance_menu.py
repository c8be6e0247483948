"""Maintenance menu from the window: damage a piece and a metadata copy, Scrub shows both (per
device, per model, the record's file), "Repair now" heals them, Scrub is clean again; Verify
quick and full; Rebalance previewed; Free unused space frees exactly what `gc --dry-run` said."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox

from modelmanager.core.units import human_bytes
from modelmanager.gui.main_window import MainWindow
from modelmanager.gui.menus import menu_actions
from modelmanager.gui.report_dialog import ReportDialog
from modelmanager.services import Workspace
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import plan_gc, verify
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import scrub
from tests.conftest import subprocess_env
from tests.gui.windows import shown_window
from tests.support.builders import hf_folder, small_model, tree_bytes, write_safetensors


def _maintenance(win: MainWindow, text: str) -> object:
    [menu] = [a.menu() for a in win.menuBar().actions() if a.text() == "&Maintenance"]
    found = [a for a in menu_actions(menu) if a.text().replace("&", "") == text]  # type: ignore[arg-type]
    assert found, text
    return found[0]


def _report(qtbot, win: MainWindow, before: ReportDialog | None) -> ReportDialog:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: win.health.dialog not in (None, before), timeout=20_000)
    dialog = win.health.dialog
    assert dialog is not None
    assert dialog.isVisible()
    return dialog


@pytest.fixture
def two_disks(ws: Workspace, tmp_path: Path) -> tuple[Workspace, Path]:
    """acme/tiny@1 kept as two copies, one on the main folder and one on device d0."""
    add_device(ws, tmp_path / "d0", name="d0")
    set_policy(ws, "copies=2")
    import_paths(ws, [hf_folder(tmp_path / "src", np.random.default_rng(1))], "acme/tiny")
    return ws, tmp_path / "d0"


@pytest.fixture
def window(qtbot, two_disks: tuple[Workspace, Path]) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, two_disks[0]) as win:
        yield win


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_scrub_shows_damage_repair_now_heals_it(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, two_disks: tuple[Workspace, Path], tmp_path: Path
) -> None:
    ws, d0 = two_disks
    piece = max((d0 / "chunks").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    _flip(piece)
    record = sorted(p for p in (d0 / "meta").rglob("*") if p.is_file())[0]
    _flip(record)
    cli_view = scrub(ws)  # what `modelmanager scrub` reports for this damage

    _maintenance(window, "Scrub").trigger()  # type: ignore[attr-defined]
    dialog = _report(qtbot, window, None)
    assert not dialog.report.ok
    assert "1 corrupt piece" in dialog.summary.text()
    lines = dialog.lines()
    assert cli_view.by("device") == {"d0": {"corrupt": 1}}  # once: there, but corrupt
    assert lines["Per device"] == ["device d0: 1 corrupt"]
    assert lines["Per model"] == ["model acme/tiny: 1 corrupt, 1 under-replicated"]
    assert len(lines["Metadata records"]) == len(cli_view.metadata) == 1
    assert any(record.name in line for line in lines["Metadata records"]), lines
    assert any(piece.name in line and "d0" in line for line in lines["Pieces"]), lines

    dialog.buttons["Repair now"].click()
    repaired = _report(qtbot, window, dialog)
    assert repaired.report.title == "Repair"
    assert repaired.report.ok, repaired.summary.text()
    assert "1 chunk repaired" in repaired.summary.text()
    assert scrub(ws).ok  # the repository, read again, is whole

    _maintenance(window, "Scrub").trigger()  # type: ignore[attr-defined]
    clean = _report(qtbot, window, repaired)
    assert clean.report.ok
    assert clean.summary.text().endswith("all good.")
    assert "Repair now" not in clean.buttons

    out = tmp_path / "out"
    window.versions.export("acme/tiny@1", out)
    qtbot.waitUntil(lambda: window.versions.dialog is not None)
    assert tree_bytes(out) == tree_bytes(tmp_path / "src")


def test_verify_quick_and_full(qtbot, window: MainWindow, ws: Workspace) -> None:  # type: ignore[no-untyped-def]
    _maintenance(window, "Verify (quick)").trigger()  # type: ignore[attr-defined]
    quick = _report(qtbot, window, None)
    expected = verify(ws)
    assert quick.summary.text().startswith("Quick verify of the repository: all good (1 version")
    _maintenance(window, "Verify (full)").trigger()  # type: ignore[attr-defined]
    full = _report(qtbot, window, quick)
    assert full.summary.text() == (
        f"Full verify of the repository: all good (1 version, {expected.chunks} chunks "
        f"({human_bytes(expected.bytes)}) checked)."
    )


def test_rebalance_is_previewed(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    _maintenance(window, "Rebalance…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.health.box is not None)
    box = window.health.box
    assert box is not None
    assert "nothing to move" in box.text()  # placed where placement puts it: no Move button
    assert [b.text() for b in box.buttons()] == ["Close"]
    box.button(QMessageBox.StandardButton.Close).click()


def test_free_unused_space_frees_what_gc_dry_run_says(  # type: ignore[no-untyped-def]
    qtbot, ws: Workspace, tmp_path: Path
) -> None:
    """One folder, no devices: a manifest deleted by hand leaves its chunks unused (with
    devices, its copies there make gc refuse instead: tested in tests/cli)."""
    for name, seed in (("acme/tiny", 7), ("junk", 8)):
        src = write_safetensors(tmp_path / f"{seed}.safetensors",
                                small_model(np.random.default_rng(seed)))  # fmt: skip
        import_paths(ws, [src], name)
    (ws.repo.root / "models" / "junk" / "versions" / "00000001.json").unlink()  # orphans
    with shown_window(qtbot, ws) as window:
        _free_space(qtbot, window, ws, tmp_path)


def _free_space(qtbot, window: MainWindow, ws: Workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = subprocess.run(
        [sys.executable, "-m", "modelmanager", "--repo", str(ws.repo.root), "gc", "--dry-run",
         "--json"], capture_output=True, text=True, env=subprocess_env(tmp_path), check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    dry = json.loads(run.stdout)
    assert dry["chunks"] > 0
    assert dry["deleted_chunks"] == 0
    _maintenance(window, "Free unused space…").trigger()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.cleanup.box is not None and window.cleanup.box.isVisible())
    box = window.cleanup.box
    assert box is not None
    assert f"Delete {dry['chunks']} chunks no version uses" in box.text()
    [go] = [b for b in box.buttons() if b.text() == "Delete"]
    go.click()
    done = _report(qtbot, window, None)
    assert done.summary.text().startswith(f"Deleted {dry['chunks']} unused chunks and ")
    assert f"freed {human_bytes(dry['bytes'])}." in done.summary.text()
    assert done.lines()["Deleted"] == [
        f"chunk {c['chunk']} ({human_bytes(c['stored_bytes'])})" for c in dry["unused_chunks"]
    ]
    assert plan_gc(ws).chunks == ()
    stored = dict(ws.repo.chunks.iter_stored())
    assert not any(c["chunk"] in stored for c in dry["unused_chunks"])
