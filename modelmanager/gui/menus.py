"""The window's menus and toolbars: every action, each shortcut listed in a menu.

Built here so the window module stays small; each action calls a controller. The Version
menu's actions act on the version the tabs show and are enabled only while one is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from modelmanager.gui.resources import icon


def _action(
    win: Any,
    text: str,
    run: Callable[[], object],
    *,
    shortcut: Any = None,
    tip: str = "",
    icon_name: str = "",
) -> QAction:
    act = QAction(icon(icon_name), text, win) if icon_name else QAction(text, win)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
    if tip:
        act.setToolTip(tip)
        act.setStatusTip(tip)
    act.triggered.connect(lambda _checked=False: run())
    return act


def _toolbar(win: Any, name: str) -> QToolBar:
    tools: QToolBar = win.addToolBar(name)
    tools.setObjectName(f"{name.lower()}-toolbar")
    tools.setMovable(False)
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return tools


def build_menus(win: Any) -> None:
    """File, Edit, Version, Model, Maintenance and Help menus, the Main and Maintenance toolbars."""
    bar, tools = win.menuBar(), _toolbar(win, "Main")
    file_menu: QMenu = bar.addMenu("&File")
    imp = _action(
        win,
        "&Import…",
        win.imports.choose_files,
        shortcut="Ctrl+I",
        tip="Import checkpoint files (or drop files and folders anywhere on the window)",
        icon_name="import",
    )
    imp_dir = _action(
        win,
        "Import &folder…",
        win.imports.choose,
        shortcut="Ctrl+Shift+I",
        tip="Import a model folder",
    )
    open_repo = _action(
        win,
        "&Open repository…",
        win.repositories.choose,
        shortcut=QKeySequence.StandardKey.Open,
        icon_name="open",
    )
    win.close_repo_action.triggered.connect(
        lambda _checked=False: win.close_repository(str(win.ws.repo.root))
    )
    recover = _action(
        win,
        "Re&cover repository…",
        win.recovery.open_dialog,
        tip="Rebuild a repository whose main folder is lost, from its devices",
    )
    refresh = _action(
        win,
        "&Refresh",
        win.refresh_all,
        shortcut=QKeySequence.StandardKey.Refresh,
        icon_name="refresh",
    )
    dupes = _action(
        win,
        "Find &duplicates…",
        win.stores_view.find_duplicates,
        tip="Files kept more than once across the model stores and repositories",
    )
    add_remote = _action(
        win,
        "Add re&mote…",
        win.remotes.ask_add,
        tip="Connect an S3 bucket, a shared folder or an HTTP address to push to and pull from",
    )
    mount = _action(
        win,
        "&Mount…",
        win.mounts.ask_mount,
        tip="Show every version as read-only folders (MODEL/@N, MODEL/latest, MODEL/LABEL) "
            "that any tool can read in place",
    )  # fmt: skip
    win.mount_action = mount
    quit_ = _action(win, "&Quit", win.close, shortcut=QKeySequence.StandardKey.Quit)
    for act in (imp, imp_dir, open_repo, win.close_repo_action, recover, add_remote, mount,
                refresh, dupes):  # fmt: skip
        file_menu.addAction(act)
    file_menu.addSeparator()
    file_menu.addAction(quit_)
    for act in (imp, open_repo, refresh):
        tools.addAction(act)

    edit = bar.addMenu("&Edit")
    edit.addAction(
        _action(win, "&Find", win.search.setFocus, shortcut=QKeySequence.StandardKey.Find)
    )

    v = win.versions
    version = bar.addMenu("&Version")
    export = _action(
        win,
        "&Export…",
        v.choose_export,
        shortcut="Ctrl+E",
        icon_name="export",
        tip="Write the version's files into a folder, byte for byte",
    )
    verify = _action(win, "&Verify", v.verify, tip="Re-hash every chunk the version needs")
    copy = _action(
        win,
        "&Copy reference",
        v.copy_reference,
        shortcut="Ctrl+Shift+C",
        tip="Put model@N on the clipboard, for the command line",
    )
    label = _action(
        win, "&Label…", v.ask_label, shortcut="Ctrl+L", tip="Add, move or remove a label"
    )
    bench = _action(
        win,
        "&Benchmark",
        win.performance_tab.run_benchmark,
        shortcut="Ctrl+B",
        tip="Measure how fast the selected version loads from each device",
        icon_name="benchmark",
    )
    warm = _action(
        win,
        "Keep &warm",
        win.performance_tab.keep_warm,
        icon_name="warm",
        tip="Read the selected version into memory so its next load is fast",
    )
    v.compare = win.history.compare
    v.push_to = win.remotes.push
    diff = _action(
        win, "&Diff with…", v.ask_diff, shortcut="Ctrl+D",
        tip="Compare with another version of the model (tensors and files added, removed, "
            "changed); the result shows in History",
    )  # fmt: skip
    push = _action(win, "&Push to…", v.ask_push, tip="Send the version to a remote")
    remove = _action(
        win,
        "&Remove…",
        lambda: win.current_ref and win.cleanup.ask_remove([win.current_ref]),
        tip="Remove the version, after a preview of what it frees",
    )
    pin = _action(
        win,
        "Pin &hot",
        v.pin,
        tip="Keep a plain copy of each chunk on a hot-tier device, read first by loads",
    )
    unpin = _action(win, "&Unpin", v.unpin, tip="Stop keeping the version hot")  # fmt: skip
    v.pin_actions = (pin, unpin)
    version.aboutToShow.connect(lambda: win.current_ref and v.read_pin())
    win.version_actions = [export, verify, diff, copy, label, push, pin, unpin, remove]
    for act in (export, verify, diff, copy, label, push):
        version.addAction(act)
    version.addSeparator()
    version.addAction(pin)
    version.addAction(unpin)
    version.addSeparator()
    version.addAction(bench)
    version.addAction(warm)
    version.addSeparator()
    version.addAction(remove)
    tools.addSeparator()
    for act in (export, bench, warm):
        tools.addAction(act)

    m = win.model_actions
    model_menu = bar.addMenu("M&odel")
    model_menu.addAction(_action(
        win, "Redundancy &policy…", m.ask_policy,
        tip="Whole copies or erasure coding for the shown model (or the repository), "
            "after a preview of what it writes and removes",
    ))  # fmt: skip
    model_menu.addAction(_action(
        win, "&Codec…", m.ask_codec,
        tip="How new chunks of the shown model (or the repository) are compressed",
    ))  # fmt: skip
    model_menu.addAction(_action(
        win, "&Recompress…", m.ask_recompress,
        tip="Re-encode the stored chunks of every version of the shown model, after a "
            "preview of the stored size it leaves",
    ))  # fmt: skip
    model_menu.addSeparator()
    m.ask_remove = win.cleanup.ask_remove
    model_menu.addAction(_action(
        win, "Remove &all versions…", m.ask_remove_all,
        tip="Remove the shown model, after a preview of its versions, labels and the bytes "
            "it frees",
    ))  # fmt: skip
    win.layout_tab.connect_actions(win, win.health.repair)

    h = win.health
    maint = bar.addMenu("&Maintenance")
    quick = _action(
        win,
        "Verify (&quick)",
        lambda: h.verify(quick=True),
        tip="Check every needed chunk is there with its size",
    )
    full = _action(
        win,
        "&Verify (full)",
        h.verify,
        icon_name="verify",
        tip="Re-hash every byte of every version",
    )
    scrub = _action(
        win,
        "&Scrub",
        h.scrub,
        icon_name="scrub",
        tip="Check every piece on every device and every metadata copy",
    )
    repair = _action(
        win,
        "&Repair",
        h.repair,
        icon_name="repair",
        tip="Rebuild missing or corrupt pieces from good ones",
    )
    rebal = _action(
        win,
        "Re&balance…",
        h.ask_rebalance,
        tip="Move pieces to where placement puts them now, after a preview",
    )
    gc = _action(
        win,
        "&Free unused space…",
        win.cleanup.ask_gc,
        icon_name="free",
        tip="Delete chunks no version uses (garbage collection), after a preview",
    )
    hot_tier = _action(
        win,
        "Apply &hot tier…",
        v.ask_hot_tier,
        tip="Promote recently loaded versions hot and demote the least recently used "
        "promotions past each hot device's fill limit, after a preview",
    )
    for act in (quick, full, scrub, repair, rebal, hot_tier, gc):
        maint.addAction(act)
    mtools = _toolbar(win, "Maintenance")
    for act in (full, scrub, repair, gc):
        mtools.addAction(act)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(
        _action(
            win, "Show &log", win.show_log, tip="What went wrong, with details for a bug report"
        )
    )
    help_menu.addAction(_action(win, "&About ModelManager", win.about))


def menu_actions(menu: QMenu) -> list[QAction]:
    """Every action of ``menu`` and its submenus."""
    out = []
    for act in menu.actions():
        sub = act.menu()
        if isinstance(sub, QMenu):
            out += menu_actions(sub)
        elif not act.isSeparator():
            out.append(act)
    return out
