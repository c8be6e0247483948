"""Files kept more than once across the model stores and open repositories: one row per group
with the bytes keeping one copy frees, its copies below it, and the total."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from modelmanager.core.text import shown
from modelmanager.core.units import human_bytes, plural
from modelmanager.services.store_duplicates import DuplicateGroup

COLUMNS = ("Frees", "Copies", "Size", "Content and where it is kept")
WHERE = 3  # the column that names the content and its places (the widest: last)


def total_text(groups: list[DuplicateGroup]) -> str:
    """The dialog's one-line summary: how many files, and the bytes freed in total."""
    if not groups:
        return "No file is kept twice in the stores and open repositories."
    freeable = sum(g.freeable for g in groups)
    return (f"{plural(len(groups), 'file')} kept more than once; keeping one copy of each "
            f"frees {human_bytes(freeable)} in total.")  # fmt: skip


class DuplicatesDialog(QDialog):
    """The groups, biggest saving first; each expands to the places it is kept."""

    def __init__(self, groups: list[DuplicateGroup], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Duplicates")
        self.total = QLabel(total_text(groups))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        for g in groups:
            top = QTreeWidgetItem([
                human_bytes(g.freeable), str(g.physical), human_bytes(g.size),
                f"blake3 {g.digest[:16]}…",
            ])  # fmt: skip
            top.setToolTip(WHERE, g.digest)
            for where in g.copies:
                top.addChild(QTreeWidgetItem(["", "", "", shown(where)]))
            self.tree.addTopLevelItem(top)
        self.tree.expandAll()
        for column in range(WHERE):
            self.tree.resizeColumnToContents(column)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.total)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.resize(760, 420)

    def rows(self) -> list[tuple[str, ...]]:
        """Every group's row and its copies, as shown (for tests and screenshots)."""
        out: list[tuple[str, ...]] = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            assert top is not None  # i is below the count
            out.append(tuple(top.text(c) for c in range(len(COLUMNS))))
            children = (top.child(j) for j in range(top.childCount()))
            out += [(c.text(WHERE),) for c in children if c is not None]
        return out
