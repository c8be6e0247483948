"""``modelmanager``: the command line over the services.

Errors print as one line ``modelmanager: error: <file>: <cause>`` and set the exit code of their
class (2 bad input or out of memory, 1 problems found, 3 locked, 130 cancelled); bugs print a
traceback (70).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from modelmanager import __version__, paths
from modelmanager.cli import commands, store_commands
from modelmanager.core.chunks.selection import STRATEGIES
from modelmanager.core.codecs import CODEC_NAMES
from modelmanager.core.localfiles import SYMLINK_RULES
from modelmanager.core.repo.repository import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_GROUP_SIZE,
    DEFAULT_LOCK_TIMEOUT,
)
from modelmanager.errors import EXIT_BUG, EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, ModelManagerError
from modelmanager.gui import TABS

Handler = Callable[[argparse.Namespace], int]


def _size(text: str) -> int:
    """'4M' -> 4194304; plain numbers are bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        if text[-1:].upper() in units:
            return int(text[:-1]) * units[text[-1].upper()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4M, 64K)") from None


STRATEGY_HELP = "which copy to read when several devices hold one (default: the best measured)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per operation."""
    parser = argparse.ArgumentParser(
        prog="modelmanager",
        description="Versioned, deduplicated, verified storage for model checkpoints.",
        epilog=f"Default repository: {paths.default_repo_path()} "
        f"(override with --repo or {paths.ENV_REPO}).",
    )
    parser.add_argument("--version", action="version", version=f"modelmanager {__version__}")
    parser.add_argument(
        "--repo", default=os.environ.get(paths.ENV_REPO), metavar="PATH",
        help="repository folder (default: the per-user repository, created on first use)",
    )  # fmt: skip
    parser.add_argument(
        "--wait", type=float, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
        help="how long a write waits for another writer to finish (default %(default)g)",
    )  # fmt: skip
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def action(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help_text: str,
    ) -> argparse.ArgumentParser:
        """One action of a command group (``remote add``, ``device rm``, ...)."""
        p = group.add_parser(name, parents=[common], help=help_text)
        p.set_defaults(func=handler)
        return p

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=handler)
        return p

    p = add("init", commands.cmd_init, "create an empty repository")
    p.add_argument("path", nargs="?", help="folder (default: --repo or the default repository)")
    p.add_argument(
        "--chunk-size",
        type=_size,
        default=DEFAULT_CHUNK_SIZE,
        metavar="SIZE",
        help="largest chunk (default 4M)",
    )
    p.add_argument(
        "--group-size",
        type=_size,
        default=DEFAULT_GROUP_SIZE,
        metavar="SIZE",
        help="tensors smaller than this are grouped into one chunk (default 64K)",
    )
    p.add_argument("--codec", choices=CODEC_NAMES, default="auto", help="default codec (auto)")
    p.add_argument("--level", type=int, default=1, help="compression level (default 1)")

    p = add("import", commands.cmd_import, "import files or folders as a new version")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to import")
    p.add_argument("--model", "-m", required=True, help="model name (NAME or ORG/NAME)")
    p.add_argument("--message", default="", help="what this version is")
    p.add_argument("--label", "-l", action="append", default=[], help="label to set (repeatable)")
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="free metadata (repeatable)",
    )
    p.add_argument("--codec", choices=CODEC_NAMES, help="codec (default: the repository's)")
    p.add_argument("--level", type=int, default=1, help="compression level (default 1)")
    p.add_argument("--symlinks", choices=SYMLINK_RULES, default="inside",
                   help="links: followed only inside the folder imported (inside, the "
                   "default), everywhere (follow), or never (refuse)")  # fmt: skip

    add("ls", commands.cmd_ls, "list models")

    p = add("log", commands.cmd_log, "list the versions of a model")
    p.add_argument("model")

    p = add("show", commands.cmd_show, "show a version (REF is NAME, NAME@3 or NAME@label)")
    p.add_argument("ref")
    p.add_argument("--tensors", action="store_true", help="list every tensor")

    p = add("export", commands.cmd_export, "write a version's files, byte for byte, under DEST")
    p.add_argument("ref")
    p.add_argument("dest")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--strategy", choices=STRATEGIES, help=STRATEGY_HELP)

    p = add("load", commands.cmd_load, "load a version into memory and report how fast it went")
    p.add_argument("ref")
    p.add_argument("--cold", action="store_true", help="empty the page cache of its chunks first")
    p.add_argument("--strategy", choices=STRATEGIES, help=STRATEGY_HELP)
    p.add_argument("--threads", type=int, help="decode threads and readers per device")

    p = add("warm", commands.cmd_warm, "keep a version warm: read its chunks into the page cache")
    p.add_argument("ref")

    p = add("bench", commands.cmd_bench, "measure device and load throughput; keep the results")
    p.add_argument("ref", nargs="?", help="the version to load (default: the newest)")
    p.add_argument("--threads", default="1,2,4,8", help="thread counts to try (default 1,2,4,8)")
    p.add_argument("--history", action="store_true", help="print stored results, measure nothing")

    p = add("diff", commands.cmd_diff, "tensors and files added, removed and changed")
    p.add_argument("a", metavar="REF")
    p.add_argument("b", metavar="REF")

    p = add("label", commands.cmd_label, "point a label at a version (or remove it)")
    p.add_argument("ref", help="the version (with --delete: the model)")
    p.add_argument("name", help="label name, e.g. prod")
    p.add_argument("--delete", action="store_true", help="remove the label")

    p = add("search", commands.cmd_search, "find versions by name, label, message, metadata")
    p.add_argument("text")

    p = add("verify", commands.cmd_verify, "check stored data (exit 1 when problems are found)")
    p.add_argument("ref", nargs="?", help="one version (default: every version)")
    p.add_argument("--quick", action="store_true", help="presence and sizes only")

    p = add("rm", commands.cmd_rm, "remove versions, and the chunks only they use")
    p.add_argument("refs", nargs="+", metavar="REF", help="NAME@N or NAME@LABEL (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="only say what would go, and the bytes it would free")  # fmt: skip
    p.add_argument("--force", action="store_true", help="also when a version carries labels")

    p = add("gc", commands.cmd_gc, "delete chunks no version uses")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")

    add("reindex", commands.cmd_reindex, "rebuild the catalog from the manifests")

    p = add("gui", commands.cmd_gui, "open the desktop application")
    p.add_argument(
        "files", nargs="*", metavar="FILE",
        help="checkpoint files or folders to import (opens the import dialog with them)",
    )  # fmt: skip
    p.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window and exit")
    p.add_argument(
        "--tab",
        default="overview",
        choices=TABS,
        help="tab to show",
    )

    p = add("remote", commands.cmd_remote_ls, "remote repositories: add, ls, rm, show")
    rem = p.add_subparsers(dest="remote_command", metavar="ACTION")
    r = action(rem, "add", commands.cmd_remote_add, "remember a remote: s3://BUCKET/PREFIX, "
               "http(s)://URL (read-only) or file:///PATH")  # fmt: skip
    r.add_argument("name")
    r.add_argument("url")
    r.add_argument("--endpoint", help="S3 endpoint URL (MinIO, Ceph RGW, ...)")
    r.add_argument("--profile", help="AWS profile to use (from ~/.aws)")
    r.add_argument("--access-key-id", help="S3 access key id; the secret is asked for (or read "
                   "from standard input) and kept in the OS keyring")  # fmt: skip
    action(rem, "ls", commands.cmd_remote_ls, "list remotes")
    r = action(rem, "rm", commands.cmd_remote_rm, "forget a remote (its data stays)")
    r.add_argument("name")
    r = action(rem, "show", commands.cmd_remote_show, "a remote's models and versions, or one "
               "version (manifests only: no weights are downloaded)")  # fmt: skip
    r.add_argument("name")
    r.add_argument("ref", nargs="?")
    r.add_argument("--tensors", action="store_true", help="list every tensor of REF")

    p = add("stores", store_commands.cmd_stores_ls, "models other tools keep here (Hugging "
            "Face cache, Ollama, LM Studio, folders): ls, show, dups, adopt, add, rm")  # fmt: skip
    p.add_argument("--tensors", action="store_true", help=argparse.SUPPRESS)
    store_commands.add_parsers(p.add_subparsers(dest="stores_command", metavar="ACTION"), action)

    p = add("push", commands.cmd_push, "send a version, and the chunks the remote lacks")
    p.add_argument("ref")
    p.add_argument("remote")

    p = add("pull", commands.cmd_pull, "fetch a version, and the chunks this repository lacks")
    p.add_argument("remote")
    p.add_argument("ref")

    p = add("device", commands.cmd_device_ls, "storage devices: add, ls, rm, offline, online, set")
    dev = p.add_subparsers(dest="device_command", metavar="ACTION")
    d = action(dev, "add", commands.cmd_device_add, "register a folder (an empty one, or a "
               "device of this repository mounted elsewhere)")  # fmt: skip
    d.add_argument("path")
    d.add_argument("--name", help="device name (default: the folder's name)")
    d.add_argument("--weight", type=float, default=1.0, help="share of new data (default 1)")
    d.add_argument("--tier", choices=("hot", "warm", "cold"), default="hot")
    action(dev, "ls", commands.cmd_device_ls, "list devices")
    d = action(dev, "rm", commands.cmd_device_rm, "remove a device")
    d.add_argument("name")
    how = d.add_mutually_exclusive_group(required=True)
    how.add_argument("--drain", action="store_true", help="move its data off first")
    how.add_argument("--force", action="store_true", help="forget a dead disk now")
    d.add_argument("--dry-run", action="store_true",
                   help="with --drain: say what would move where, and if it fits")  # fmt: skip
    for state in ("offline", "online"):
        action(dev, state, commands.cmd_device_set, f"mark a device {state}").add_argument("name")
    d = action(dev, "set", commands.cmd_device_set, "change weight or tier")
    d.add_argument("name")
    d.add_argument("--weight", type=float)
    d.add_argument("--tier", choices=("hot", "warm", "cold"))

    p = add("policy", commands.cmd_policy, "redundancy: policy show | policy set [MODEL] POLICY")
    p.add_argument("policy_command", choices=("show", "set"))
    p.add_argument(
        "words",
        nargs="*",
        metavar="[MODEL] POLICY",
        help="copies=N or ec=K+M, for MODEL or (without it) the repository",
    )
    p.add_argument("--dry-run", action="store_true",
                   help="with set: what converting writes and removes, and if it fits")  # fmt: skip

    p = add("codec", commands.cmd_codec, "compression: codec show | codec set [MODEL] CODEC")
    p.add_argument("codec_command", choices=("show", "set"))
    p.add_argument(
        "words",
        nargs="*",
        metavar="[MODEL] CODEC",
        help=f"one of {', '.join(CODEC_NAMES)}, for MODEL or the repository",
    )
    p.add_argument("--level", type=int, default=1, help="zstd level (default 1)")

    p = add(
        "recompress",
        commands.cmd_recompress,
        "re-encode a version's chunks with another codec (safe to interrupt and rerun)",
    )
    p.add_argument("ref")
    p.add_argument("--codec", choices=CODEC_NAMES, required=True)
    p.add_argument("--level", type=int, default=1, help="zstd level (default 1)")

    add("scrub", commands.cmd_scrub, "read and check every stored piece (exit 1 on problems)")
    add("repair", commands.cmd_repair, "rebuild missing or corrupt pieces from good ones")
    p = add("rebalance", commands.cmd_rebalance, "move pieces to where placement now puts them")
    p.add_argument("--dry-run", action="store_true", help="only say what would move where")
    add("stats", commands.cmd_stats, "sizes: logical, unique, stored")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = getattr(args, "func", None) or commands.cmd_status
    try:
        if handler is commands.cmd_status:
            # No command starts the app: the window where there is a display; elsewhere the
            # repository's status and the help (a terminal on a server, or CI).
            if commands.display_available():
                args.screenshot, args.tab, args.files = None, "overview", []
                return commands.cmd_gui(args)
            code = handler(args)
            parser.print_help()
            return code
        return int(handler(args))
    except ModelManagerError as e:
        print(f"modelmanager: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("modelmanager: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader of our output went away (e.g. '| head'): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except MemoryError:
        # Input too big for the memory allowed (a parser names the file itself): one line, as
        # for any bad input, never a traceback.
        print("modelmanager: error: out of memory: the input needs more memory than this "
              "process may use", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print("modelmanager: internal error: this is a bug in ModelManager", file=sys.stderr)
        return EXIT_BUG
