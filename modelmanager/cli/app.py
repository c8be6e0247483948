"""The application as a whole: ``init``, the status line, and ``gui`` (the desktop app)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from modelmanager import __version__, paths
from modelmanager.cli.common import Commands, workspace
from modelmanager.cli.output import human_bytes, plural, print_json
from modelmanager.core.codecs import CODEC_NAMES, CodecSettings
from modelmanager.core.repo.versions import DEFAULT_CHUNK_SIZE, DEFAULT_GROUP_SIZE
from modelmanager.errors import EXIT_OK, UserError
from modelmanager.services import history, init_repository
from modelmanager.tabs import TABS


def display_available() -> bool:
    """True where the desktop app can open a window (checked without importing Qt)."""
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the desktop application (Qt, and the GUI package, are imported only here)."""
    try:
        from modelmanager.gui.app import run
    except ImportError as e:
        raise UserError(f"the desktop app needs PySide6 ({e})") from None
    screenshot = Path(args.screenshot) if args.screenshot else None
    files = [Path(f).absolute() for f in args.files]
    return run(Path(args.repo) if args.repo else None, screenshot, args.tab, files)


def cmd_status(args: argparse.Namespace) -> int:
    """One line about the repository in use: where it is and what it holds."""
    ws = workspace(args)
    models = history.list_models(ws)
    versions = sum(m.versions for m in models)
    size = human_bytes(sum(m.logical_bytes for m in models))
    print(
        f"ModelManager {__version__}: repository {ws.repo.root} holds "
        f"{plural(len(models), 'model')}, {plural(versions, 'version')} ({size} newest)\n"
    )
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.path or args.repo or paths.default_repo_path())
    ws = init_repository(
        root,
        chunk_size=args.chunk_size,
        group_size=min(args.group_size, args.chunk_size),
        codec=CodecSettings(args.codec, args.level),
    )
    if args.json:
        print_json({"repository": str(ws.repo.root), "id": ws.repo.config.id})
    else:
        print(f"Created an empty repository in {ws.repo.root}")
    return EXIT_OK


def _size(text: str) -> int:
    """'4M' -> 4194304; plain numbers are bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        if text[-1:].upper() in units:
            return int(text[:-1]) * units[text[-1].upper()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4M, 64K)") from None


def add_init_parser(commands: Commands) -> None:
    """``init`` (first in the help, as it is first in use)."""
    p = commands.add("init", cmd_init, "create an empty repository")
    p.add_argument("path", nargs="?", help="folder (default: --repo or the default repository)")
    p.add_argument("--chunk-size", type=_size, default=DEFAULT_CHUNK_SIZE, metavar="SIZE",
                   help="largest chunk (default 4M)")  # fmt: skip
    p.add_argument("--group-size", type=_size, default=DEFAULT_GROUP_SIZE, metavar="SIZE",
                   help="tensors smaller than this are grouped into one chunk "
                   "(default 64K)")  # fmt: skip
    p.add_argument("--codec", choices=CODEC_NAMES, default="auto", help="default codec (auto)")
    p.add_argument("--level", type=int, default=1, help="compression level (default 1)")


def add_gui_parser(commands: Commands) -> None:
    """``gui``."""
    p = commands.add("gui", cmd_gui, "open the desktop application")
    p.add_argument(
        "files", nargs="*", metavar="FILE",
        help="checkpoint files or folders to import (opens the import dialog with them)",
    )  # fmt: skip
    p.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window and exit")
    p.add_argument("--tab", default="overview", choices=TABS, help="tab to show")
