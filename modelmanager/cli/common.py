"""What every command module shares: the repository in use, how commands are added, and the
JSON of a version's details."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelmanager import paths
from modelmanager.core.catalog import VersionRow
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.versions import VersionStore
from modelmanager.services import Workspace, open_workspace

Handler = Callable[[argparse.Namespace], int]

#: How long a command waits for another process's writer lock by default: until that writer
#: finishes (an import may take many minutes), saying who holds it; Ctrl+C stops waiting.
CLI_LOCK_WAIT = math.inf

STRATEGY_HELP = "which copy to read when several devices hold one (default: the best measured)"


def workspace(args: argparse.Namespace) -> Workspace:
    """The repository named by --repo / MODELMANAGER_REPO, else the default (made on first use)."""
    ws = open_workspace(Path(args.repo) if args.repo else None)
    ws.repo.lock.notify = _tell_waiting
    return ws


def _tell_waiting(text: str) -> None:
    """Say on stderr why a write has not started yet, and how to stop it."""
    print(f"modelmanager: {text} (Ctrl+C to stop waiting)", file=sys.stderr, flush=True)


def when(created: str) -> str:
    """An ISO timestamp as a table shows it: '2025-01-31 12:00:00'."""
    return created[:19].replace("T", " ")


def global_options(*, after_command: bool) -> argparse.ArgumentParser:
    """--repo and --wait: on the top-level parser with their defaults, and on every command
    with no default (argparse.SUPPRESS), so ``ls --repo X`` sets them and ``--repo X ls`` is
    not undone by the command's parser."""
    p = argparse.ArgumentParser(add_help=False)
    env_repo = os.environ.get(paths.ENV_REPO)
    p.add_argument(
        "--repo", default=argparse.SUPPRESS if after_command else env_repo, metavar="PATH",
        help="repository folder (default: the per-user repository, created on first use)",
    )  # fmt: skip
    p.add_argument(
        "--wait", type=float, metavar="SECONDS",
        default=argparse.SUPPRESS if after_command else CLI_LOCK_WAIT,
        help="how long a write waits for another writer to finish before exiting with 3 "
        "(default: until it finishes; Ctrl+C stops waiting)",
    )  # fmt: skip
    return p


class Commands:
    """Adds commands to the top-level parser: each command module's ``add_parsers`` calls it."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self.sub = sub
        common = argparse.ArgumentParser(add_help=False, parents=[global_options(
            after_command=True)])  # fmt: skip
        common.add_argument("--json", action="store_true", help="print JSON for scripts")
        self.parents = [common]

    def add(self, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        """A command (``ls``, ``import``, or a group such as ``remote``)."""
        p = self.sub.add_parser(name, parents=self.parents, help=help_text, description=help_text)
        p.set_defaults(func=handler)
        return p

    def action(
        self,
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help_text: str,
    ) -> argparse.ArgumentParser:
        """One action of a command group (``remote add``, ``device rm``, ...)."""
        p = group.add_parser(name, parents=self.parents, help=help_text, description=help_text)
        p.set_defaults(func=handler)
        return p


def parent_removed(store: VersionStore, m: Manifest) -> bool:
    """True when the version ``m`` was made from has been removed (from ``store``)."""
    return m.parent in set(store.removed_numbers(m.model)) - set(store.version_numbers(m.model))


def manifest_json(m: Manifest, labels: dict[str, int], tensors: bool) -> dict[str, Any]:
    """A version in detail, as ``show`` and ``remote show NAME REF`` print it: exactly the keys
    ``log`` gives the version (``files`` and ``tensors`` are counts), plus ``file_list`` and,
    with ``tensors``, ``tensor_list``."""
    doc: dict[str, Any] = {
        **VersionRow.of(m, labels).to_json(),
        "file_list": [
            {"path": f.path, "size": f.size, "format": f.format, "chunks": len(f.chunks),
             "tensors": len(f.tensors)}
            for f in m.files
        ],
    }  # fmt: skip
    if tensors:
        doc["tensor_list"] = [
            {"file": f.path, "name": t.name, "dtype": t.dtype, "shape": list(t.shape),
             "parameters": t.numel, "offsets": [t.start, t.end], "digest": t.digest}
            for f, t in m.tensors
        ]  # fmt: skip
    return doc
