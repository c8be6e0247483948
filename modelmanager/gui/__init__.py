"""The desktop application (PySide6): the only package that imports Qt."""

from modelmanager.tabs import TABS

__all__ = ["TABS"]
