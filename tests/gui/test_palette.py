"""Dark and light palettes (the offscreen platform cannot play an OS scheme change, so the
palette switch the colorSchemeChanged signal calls is driven directly)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from modelmanager.gui.app import application, apply_color_scheme


def test_dark_scheme_gets_a_dark_palette_and_light_comes_back(qtbot) -> None:  # type: ignore[no-untyped-def]
    app = application()
    try:
        apply_color_scheme(app, Qt.ColorScheme.Dark)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert app.palette().color(QPalette.ColorRole.WindowText).lightness() > 180
        assert app.palette().color(QPalette.ColorRole.Base).lightness() < 80
        apply_color_scheme(app, Qt.ColorScheme.Light)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        apply_color_scheme(app, app.styleHints().colorScheme())
