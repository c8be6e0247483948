"""What a tab or controller may use of the main window: a small protocol, not the window.

The window satisfies it structurally, so tabs and controllers never import the window module
(no cycle, not even for type checking) and a test can drive one with a stand-in.
"""

from __future__ import annotations

from typing import Protocol

from modelmanager.gui.jobs_bridge import JobRunner
from modelmanager.services import Changes, Workspace


class WindowContext(Protocol):
    """The repository the tabs show, the job runner, a status line and the refresh path."""

    @property
    def ws(self) -> Workspace:
        """The repository the tabs show (changes when another tree item is selected)."""
        ...

    @property
    def runner(self) -> JobRunner:
        """Where every repository read and write runs, off the UI thread."""
        ...

    @property
    def current_ref(self) -> str | None:
        """The version the tabs show, if any."""
        ...

    def notify(self, message: str, timeout_ms: int = 15_000) -> None:
        """Show ``message`` on the status line for ``timeout_ms`` (0: until replaced)."""
        ...

    def apply_changes(self, ws: Workspace, changes: Changes) -> None:
        """Refresh only what ``changes`` names in ``ws`` (after a job's write)."""
        ...
