"""The main window's tabs, by the names ``gui --tab`` takes.

Neither Qt nor the GUI package is imported here, so the command line can offer the names
without depending on the GUI (an import-linter contract keeps the two independent).
"""

from __future__ import annotations

#: The main window's tabs, in order.
TABS = ("overview", "history", "tensors", "layout", "devices", "jobs", "performance", "structure")
