"""``mount`` and ``umount``: the repository as read-only folders (``MODEL/@N``, ``MODEL/latest``,
``MODEL/LABEL``) that any tool can read in place."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelmanager.cli.app import _size as size_arg
from modelmanager.cli.common import Commands, workspace
from modelmanager.cli.output import human_bytes, print_json
from modelmanager.errors import EXIT_OK
from modelmanager.services.mount import DEFAULT_CACHE_BYTES
from modelmanager.services.mount_fuse import mount, unmount


def cmd_mount(args: argparse.Namespace) -> int:
    ws = workspace(args)
    where = Path(args.mountpoint).absolute()  # libfuse changes the working folder to /

    def ready(at: Path) -> None:
        if args.json:
            print_json({"mountpoint": str(at), "repository": str(ws.repo.root)})
            sys.stdout.flush()  # the window waits for this line; a pipe would hold it back
        else:
            print(f"Mounted {ws.repo.root} read-only on {at} (MODEL/@N, MODEL/latest, "
                  f"MODEL/LABEL); Ctrl+C or 'modelmanager umount {at}' unmounts it",
                  flush=True)  # fmt: skip

    view = mount(ws, where, cache_bytes=args.cache_size, ready=ready,
                 threads=args.threads)  # fmt: skip
    if not args.json:
        print(f"Unmounted {where}" + (
            f" ({view.degraded} chunks read from another copy or rebuilt)"
            if view.degraded else ""), flush=True)  # fmt: skip
    return EXIT_OK


def cmd_umount(args: argparse.Namespace) -> int:
    unmount(Path(args.mountpoint))
    if args.json:
        print_json({"unmounted": str(Path(args.mountpoint).absolute())})
    else:
        print(f"Unmounted {Path(args.mountpoint).absolute()}")
    return EXIT_OK


def add_parsers(commands: Commands) -> None:
    """``mount`` and ``umount``."""
    p = commands.add("mount", cmd_mount, "show every version as read-only folders on an "
                     "empty folder, read on demand (foreground until unmounted)")  # fmt: skip
    p.add_argument("mountpoint", help="an empty folder")
    p.add_argument("--cache-size", type=size_arg, default=DEFAULT_CACHE_BYTES, metavar="SIZE",
                   help="memory for decoded chunks, e.g. 512M "
                   f"(default {human_bytes(DEFAULT_CACHE_BYTES)})")  # fmt: skip
    p.add_argument("--threads", type=int, help="decode threads and readers per device")
    p = commands.add("umount", cmd_umount, "unmount a folder 'modelmanager mount' serves")
    p.add_argument("mountpoint")
