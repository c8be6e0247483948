"""What the tabs show of one version, read in one job off the UI thread.

Selecting a version reads its details, its model's versions and label moves, where its pieces
are and the Tensors tab's rows together, the manifest once (the window then fills the tabs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmanager.core.catalog import VersionRow
from modelmanager.errors import NotFoundError
from modelmanager.gui.tensor_table import VersionTensorRows, tensor_rows
from modelmanager.services import Workspace, history
from modelmanager.services.redundancy import VersionLayout, version_layout


@dataclass(frozen=True)
class ShownVersion:
    """One version as the Overview, History, Tensors and Shard layout tabs show it."""

    details: history.VersionDetails
    versions: list[VersionRow]  # its model's, newest first (History)
    layout: VersionLayout  # which device holds which piece (Shard layout)
    #: The Tensors tab's rows, formatted when drawn.
    rows: VersionTensorRows
    moves: list[dict[str, Any]]  # its model's label moves, oldest first (History)


def read_shown(ws: Workspace, ref: str) -> ShownVersion | None:
    """Read what the tabs show of ``ref`` (in a job); None when it was removed meanwhile (by
    another process): then there is nothing to show."""
    try:
        details = history.version_details(ws, ref)
    except NotFoundError:
        return None
    layout = version_layout(ws, details.manifest)  # the manifest read once
    rows = tensor_rows(details)
    model = details.manifest.model
    return ShownVersion(details, ws.catalog.versions(model), layout, rows, ws.repo.label_log(model))
