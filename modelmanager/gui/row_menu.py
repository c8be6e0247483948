"""The library tree's context menu: what a right-click on a row offers.

A version, a model, a store's entry or a remote: each gets the actions of the controllers
the menu bar drives too (this module adds none of its own). The window satisfies
:class:`RowMenuHost` structurally, so this module never imports it.
"""

from __future__ import annotations

import functools
from typing import Protocol

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QMenu, QWidget

from modelmanager.gui.controllers.maintenance import Cleanup
from modelmanager.gui.controllers.model_actions import ModelActions
from modelmanager.gui.controllers.mount import MountController
from modelmanager.gui.controllers.remotes import RemotesController
from modelmanager.gui.controllers.versions import VersionActions
from modelmanager.gui.models import REF_ROLE, REMOTE_ROLE, REMOTES, REPO_ROLE, STORE_ROLE
from modelmanager.gui.remote_dialog import remote_actions
from modelmanager.gui.stores_view import StoresView


class RowMenuHost(Protocol):
    """The controllers a row's actions call (the main window's)."""

    stores_view: StoresView
    versions: VersionActions
    mounts: MountController
    remotes: RemotesController
    cleanup: Cleanup
    model_actions: ModelActions


def row_menu(host: RowMenuHost, index: QModelIndex, parent: QWidget) -> QMenu:
    """The context menu of a tree row (empty for none): what can be done to that version,
    model, store entry or remote."""
    index = index.siblingAtColumn(0)  # the row's roles are on its name
    menu = QMenu(parent)
    if not index.isValid():
        return menu
    ref, remote_item = index.data(REF_ROLE), index.data(REMOTE_ROLE)
    store_item = index.data(STORE_ROLE)
    if store_item:
        host.stores_view.add_actions(menu, *store_item)
    elif ref and "@" in ref and index.data(REPO_ROLE):
        v, mounts, remotes = host.versions, host.mounts, host.remotes
        menu.addAction("Export…", lambda: v.choose_export(ref))
        menu.addAction("Verify", lambda: v.verify(ref))
        menu.addAction("Copy reference", lambda: v.copy_reference(ref))
        menu.addAction("Label…", lambda: v.ask_label(ref))
        menu.addAction("Diff with…", lambda: v.ask_diff(ref))
        mount = menu.addAction("Mount…", lambda: mounts.ask_mount(ref))
        mount.setEnabled(mounts.problem is None)
        mount.setToolTip(mounts.problem or "")
        v.add_pin_actions(menu, ref)
        menu.addSeparator()
        push_menu = menu.addMenu(f"Push {ref} to")
        for name in remotes.names:
            push_menu.addAction(name, functools.partial(remotes.push, ref, name))
        push_menu.setEnabled(bool(remotes.names))
        menu.addSeparator()
        cleanup = host.cleanup
        menu.addAction(f"Remove {ref}…", lambda: cleanup.ask_remove([ref]))
    elif ref and index.data(REPO_ROLE):
        m = host.model_actions
        menu.addAction("Redundancy policy…", lambda: m.ask_policy(ref))
        menu.addAction("Codec…", lambda: m.ask_codec(ref))
        menu.addAction("Recompress…", lambda: m.ask_recompress(ref))
        menu.addSeparator()
        menu.addAction(f"Remove all versions of {ref}…", lambda: m.ask_remove_all(ref))
    elif remote_item or index.data() == REMOTES:
        remote_actions(menu, host.remotes, remote_item)
    return menu
