"""``recover``: rebuild a repository whose main folder is lost, from its surviving devices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelmanager.cli.common import Commands
from modelmanager.cli.output import ProgressLine, plural, print_json, shown
from modelmanager.errors import EXIT_OK, EXIT_PROBLEMS
from modelmanager.services.recovery import recover_repository


def cmd_recover(args: argparse.Namespace) -> int:
    with ProgressLine("repairing", enabled=not args.json) as ctx:
        _ws, result = recover_repository(
            Path(args.dest), [Path(p) for p in args.sources], run_repair=not args.no_repair,
            ctx=ctx,
        )  # fmt: skip
    r = result.recovered
    if args.json:
        print_json(result.to_json())
        return EXIT_OK if result.ok else EXIT_PROBLEMS
    found = f"{plural(len(r.found), 'device')} ({', '.join(r.found)})"
    counts = ", ".join([plural(result.models, "model"), plural(result.versions, "version"),
                        plural(result.labels, "label")])  # fmt: skip
    print(shown(f"Recovered {r.root} from {found}: {counts}"))
    if r.offline:
        print(shown(f"Not given, so set offline: {', '.join(r.offline)}. Repair rebuilds their "
                    "pieces elsewhere; 'device rm' them once they are gone for good."))  # fmt: skip
    for key in r.damaged:
        print(shown(f"  no intact copy on any device given: {key}"), file=sys.stderr)
    if result.repair is not None:
        rep = result.repair
        print(f"Repair: {plural(rep.repaired_chunks, 'chunk')} rebuilt, "
              f"{plural(len(rep.lost), 'chunk')} lost")  # fmt: skip
        if rep.held_back:
            print(shown(f"  {rep.held_back}"), file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def add_parsers(commands: Commands) -> None:
    """The recover command."""
    p = commands.add(
        "recover", cmd_recover,
        "rebuild a lost repository folder from the metadata copies on its devices, then repair",
    )  # fmt: skip
    p.add_argument("dest", help="an empty or new folder: the repository's new main folder")
    p.add_argument("--from", dest="sources", nargs="+", required=True, metavar="DEVICE_PATH",
                   help="the surviving device folders (each holds a meta/ copy)")  # fmt: skip
    p.add_argument("--no-repair", action="store_true",
                   help="only rebuild the metadata; run 'repair' later")  # fmt: skip
