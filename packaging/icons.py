"""Render the app icon (resources/icons/modelmanager.svg) for each platform's installer.

Writes PNGs for the freedesktop hicolor theme, modelmanager.ico (Windows) and
modelmanager.icns (macOS). Qt renders the SVG; Pillow (a matplotlib dependency) writes the
.ico and .icns containers on any platform.

Usage: python packaging/icons.py OUT_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "icons" / "modelmanager.svg"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(out: Path) -> list[Path]:
    """Write ``hicolor/NxN/apps/<id>.png``, ``modelmanager.ico`` and ``.icns`` under ``out``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from desktop_files import APP_ID

    _app = QGuiApplication.instance() or QGuiApplication([])
    svg = QSvgRenderer(str(SVG))
    if not svg.isValid():
        raise SystemExit(f"{SVG}: not a readable SVG")
    written = []
    for size in HICOLOR_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        svg.render(painter)
        painter.end()
        path = out / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"could not write {path}")
        written.append(path)
    biggest = Image.open(written[-1])
    ico, icns = out / "modelmanager.ico", out / "modelmanager.icns"
    biggest.save(ico, sizes=[(s, s) for s in HICOLOR_SIZES if s <= 256])
    biggest.save(icns)
    return [*written, ico, icns]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python packaging/icons.py OUT_DIR")
    for written in render(Path(sys.argv[1])):
        print(written)
