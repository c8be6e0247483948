"""ModelManager: versioned, deduplicated, verified storage for machine-learning checkpoints."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("modelmanager")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
