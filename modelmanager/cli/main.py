"""``modelmanager``: the command line over the services.

Errors print as one line ``modelmanager: error: <file>: <cause>`` and set the exit code of their
class (2 bad input or out of memory, 1 problems found, 3 locked, 130 cancelled); bugs print a
traceback (70).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from collections.abc import Sequence

from modelmanager import __version__, logs, paths
from modelmanager.cli import (
    app,
    maintenance,
    mount,
    performance,
    recovery,
    storage,
    store_commands,
    tiers,
    transfer,
    versions,
)
from modelmanager.cli.common import Commands, Handler, global_options
from modelmanager.errors import EXIT_BUG, EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, ModelManagerError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: global options (before or after the command), then one
    sub-command per operation, each module adding its own."""
    parser = argparse.ArgumentParser(
        prog="modelmanager",
        description="Versioned, deduplicated, verified storage for model checkpoints.",
        epilog=f"Default repository: {paths.default_repo_path()} "
        f"(override with --repo or {paths.ENV_REPO}).",
        parents=[global_options(after_command=False)],
    )
    parser.add_argument("--version", action="version", version=f"modelmanager {__version__}")
    commands = Commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    app.add_init_parser(commands)
    versions.add_parsers(commands)
    performance.add_parsers(commands)
    maintenance.add_parsers(commands)
    app.add_gui_parser(commands)
    transfer.add_parsers(commands)
    p = commands.add("stores", store_commands.cmd_stores_ls, "models other tools keep here "
                     "(Hugging Face cache, Ollama, LM Studio, folders): ls, show, dups, adopt, "
                     "add, rm")  # fmt: skip
    p.add_argument("--tensors", action="store_true", help=argparse.SUPPRESS)
    group = p.add_subparsers(dest="stores_command", metavar="ACTION")
    store_commands.add_parsers(group, commands.action)
    storage.add_parsers(commands)
    recovery.add_parsers(commands)
    mount.add_parsers(commands)
    tiers.add_parsers(commands)
    return parser


def _command(argv: Sequence[str] | None) -> str:
    """The command line as typed, for the log."""
    return " ".join(["modelmanager", *(sys.argv[1:] if argv is None else argv)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (``argv`` None: this process's command line)."""
    if argv is None:
        # A process running one command: what the imports made lives as long as it does, so
        # the collector stops walking it. Its first full collection (~39,000 objects) took
        # 15-25 ms of ls or search at 10,000 rows. Not in a caller's process (argv given).
        gc.freeze()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = getattr(args, "func", None) or app.cmd_status
    try:
        if handler is app.cmd_status:
            # No command starts the app: the window where there is a display; elsewhere the
            # repository's status and the help (a terminal on a server, or CI).
            if app.display_available():
                args.screenshot, args.tab, args.files = None, "overview", []
                return app.cmd_gui(args)
            code = handler(args)
            parser.print_help()
            return code
        return int(handler(args))
    except ModelManagerError as e:
        if logs.is_bug(e):  # damaged data: the traceback goes to the log, the line to stderr
            logs.failure(_command(argv), e)
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
    except Exception as e:
        traceback.print_exc()
        logs.failure(_command(argv), e)
        print("modelmanager: internal error: this is a bug in ModelManager "
              f"(logged in {logs.log_path()})", file=sys.stderr)  # fmt: skip
        return EXIT_BUG
