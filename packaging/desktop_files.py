"""Desktop integration files for every platform, written from one source of truth.

The app's name, id and version (pyproject, through the installed package) and the checkpoint
types it opens (``modelmanager.core.formats.FILE_TYPES``) live in the code; the installers'
.desktop entry, MIME package and AppStream metainfo (Linux), Info.plist document types (macOS)
and file associations (Windows, NSIS) are generated from them, so they never drift apart.

Usage: python packaging/desktop_files.py OUT_DIR  (writes linux/, macos/ and windows/ there)
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from modelmanager import __version__
from modelmanager.core.formats import FILE_TYPES

APP_ID = "org.modelmanager.ModelManager"
NAME = "ModelManager"
SUMMARY = "Versioned, deduplicated, verified storage for model checkpoints"
DESCRIPTION = (
    "ModelManager keeps the machine-learning checkpoints on your workstation in one versioned, "
    "content-addressed repository: every file comes back byte for byte, identical weights are "
    "stored once, and chunks can be spread with copies or erasure coding over several disks."
)
LICENSE = "MIT"
HOMEPAGE = "https://github.com/modelmanager/modelmanager"


def numeric_version(version: str = __version__) -> str:
    """'1.2.0' from '1.2.dev4+g5': Info.plist and Windows want up to three numbers only."""
    found = re.match(r"\d+(?:\.\d+){0,2}", version)
    parts = (found.group(0) if found else "0").split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))


def desktop_entry() -> str:
    """The freedesktop .desktop file: menu entry, and the MIME types it opens (``gui %F``)."""
    mimes = ";".join(t.mime for t in FILE_TYPES)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={NAME}\n"
        f"GenericName=Model checkpoint manager\n"
        f"Comment={SUMMARY}\n"
        "Exec=modelmanager gui %F\n"
        f"Icon={APP_ID}\n"
        "Terminal=false\n"
        "Categories=Science;ArtificialIntelligence;\n"
        "Keywords=model;checkpoint;safetensors;gguf;pytorch;onnx;machine learning;\n"
        f"MimeType={mimes};\n"
        f"StartupWMClass={NAME}\n"
    )


def mime_package() -> str:
    """A shared-mime-info package defining the types the desktop does not know yet."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">',
    ]
    for t in FILE_TYPES:
        if t.known:
            continue
        out.append(f"  <mime-type type={quoteattr(t.mime)}>")
        out.append(f"    <comment>{escape(t.description)}</comment>")
        if t.name == "gguf":
            out.append('    <magic><match type="string" offset="0" value="GGUF"/></magic>')
        out += [f'    <glob pattern="*{s}"/>' for s in t.suffixes]
        out.append("  </mime-type>")
    out.append("</mime-info>")
    return "\n".join(out) + "\n"


def release_date() -> str:
    """The build's date, or SOURCE_DATE_EPOCH's for a reproducible build."""
    stamp = float(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


def metainfo() -> str:
    """AppStream metainfo: what software centres show, and the MIME types it handles."""
    mimes = "\n".join(f"    <mediatype>{escape(t.mime)}</mediatype>" for t in FILE_TYPES)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<component type="desktop-application">
  <id>{APP_ID}</id>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>{LICENSE}</project_license>
  <name>{NAME}</name>
  <summary>{escape(SUMMARY)}</summary>
  <description>
    <p>{escape(DESCRIPTION)}</p>
  </description>
  <developer id="org.modelmanager">
    <name>The ModelManager developers</name>
  </developer>
  <launchable type="desktop-id">{APP_ID}.desktop</launchable>
  <url type="homepage">{HOMEPAGE}</url>
  <provides>
    <binary>modelmanager</binary>
{mimes}
  </provides>
  <content_rating type="oars-1.1"/>
  <releases>
    <release version="{escape(__version__)}" date="{release_date()}"/>
  </releases>
</component>
"""


def info_plist() -> dict[str, Any]:
    """macOS Info.plist entries: the bundle's identity and the document types it opens."""
    uti = {t.name: f"{APP_ID}.{t.name}" for t in FILE_TYPES}
    return {
        "CFBundleName": NAME,
        "CFBundleDisplayName": NAME,
        "CFBundleIdentifier": APP_ID,
        "CFBundleShortVersionString": numeric_version(),
        "CFBundleVersion": numeric_version(),
        "LSMinimumSystemVersion": "12.0",
        "NSHighResolutionCapable": True,
        "NSRequiresAquaSystemAppearance": False,  # follow the dark mode
        "UTImportedTypeDeclarations": [
            {
                "UTTypeIdentifier": uti[t.name],
                "UTTypeDescription": t.description,
                "UTTypeConformsTo": ["public.data"],
                "UTTypeTagSpecification": {
                    "public.filename-extension": [s.lstrip(".") for s in t.suffixes],
                    "public.mime-type": [t.mime],
                },
            }
            for t in FILE_TYPES
        ],
        "CFBundleDocumentTypes": [
            {
                "CFBundleTypeName": t.description,
                "CFBundleTypeRole": "Viewer",
                "LSHandlerRank": "Alternate" if t.known else "Default",
                "LSItemContentTypes": [uti[t.name]],
            }
            for t in FILE_TYPES
        ],
    }


def nsis_include() -> str:
    """NSIS defines (name, version) and the macros that register and remove associations."""
    lines = [
        f'!define APP_NAME "{NAME}"',
        f'!define APP_ID "{APP_ID}"',
        f'!define APP_VERSION "{numeric_version()}"',
        f'!define APP_DISPLAY_VERSION "{__version__}"',
        f'!define APP_SUMMARY "{SUMMARY}"',
        "",
        "!macro RegisterFileTypes",
    ]
    for t in FILE_TYPES:
        prog = f"{NAME}.{t.name}"
        lines += [
            f'  WriteRegStr HKLM "Software\\Classes\\{prog}" "" "{t.description}"',
            f'  WriteRegStr HKLM "Software\\Classes\\{prog}\\DefaultIcon" "" '
            '"$INSTDIR\\ModelManagerApp.exe,0"',
            f'  WriteRegStr HKLM "Software\\Classes\\{prog}\\shell\\open\\command" "" '
            '\'"$INSTDIR\\ModelManagerApp.exe" "%1"\'',
        ]
        for s in t.suffixes:
            # OpenWithProgids offers the app without taking the type from another program.
            lines.append(
                f'  WriteRegStr HKLM "Software\\Classes\\{s}\\OpenWithProgids" "{prog}" ""'
            )
    lines += ["!macroend", "", "!macro UnregisterFileTypes"]
    for t in FILE_TYPES:
        prog = f"{NAME}.{t.name}"
        lines.append(f'  DeleteRegKey HKLM "Software\\Classes\\{prog}"')
        for s in t.suffixes:
            lines.append(
                f'  DeleteRegValue HKLM "Software\\Classes\\{s}\\OpenWithProgids" "{prog}"'
            )
    lines.append("!macroend")
    return "\n".join(lines) + "\n"


def write_all(out: Path) -> list[Path]:
    """Write every platform's files under ``out``; the paths written."""
    files = {
        out / "linux" / f"{APP_ID}.desktop": desktop_entry(),
        out / "linux" / f"{APP_ID}.xml": mime_package(),
        out / "linux" / f"{APP_ID}.metainfo.xml": metainfo(),
        out / "windows" / "appinfo.nsh": nsis_include(),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    plist = out / "macos" / "Info.plist"
    plist.parent.mkdir(parents=True, exist_ok=True)
    plist.write_bytes(plistlib.dumps(info_plist()))
    return [*files, plist]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    for written in write_all(Path(sys.argv[1])):
        print(written)
