"""ModelManager: versioned, deduplicated, verified storage for machine-learning checkpoints."""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real types for type checkers; imported lazily at run time (below)
    from modelmanager.api import TensorNotFound as TensorNotFound
    from modelmanager.api import Version as Version
    from modelmanager.api import checkout as checkout
    from modelmanager.api import load as load
    from modelmanager.api import open as open

try:
    __version__ = metadata.version("modelmanager")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

#: The Python API (modelmanager.api), imported on first use so ``import modelmanager`` stays
#: cheap: the command line and the app import this package, and never need numpy for it.
_API = ("load", "open", "checkout", "Version", "TensorNotFound")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """``modelmanager.load`` and the rest of the API, from modelmanager.api on first use."""
    if name in _API:
        from modelmanager import api

        return getattr(api, name)
    raise AttributeError(f"module 'modelmanager' has no attribute {name!r}")
