"""Checking and tidying the repository: ``verify``, ``gc``, ``reindex`` and ``stats``."""

from __future__ import annotations

import argparse
import sys

from modelmanager.cli.common import Commands, workspace
from modelmanager.cli.output import (
    ProgressLine,
    human_bytes,
    plural,
    print_json,
    print_table,
    shown,
)
from modelmanager.errors import EXIT_OK, EXIT_PROBLEMS
from modelmanager.services.maintenance import collect_garbage, reindex, stats, verify


def cmd_verify(args: argparse.Namespace) -> int:
    with ProgressLine("verifying", enabled=not args.json) as ctx:
        report = verify(workspace(args), args.ref, quick=args.quick, ctx=ctx)
    if args.json:
        print_json(report.to_json())
    else:
        what = "quick check" if args.quick else "full check"
        print(
            f"{what}: {report.versions} versions, {report.chunks} chunks, "
            f"{human_bytes(report.bytes)}: "
            + ("all good" if report.ok else f"{len(report.problems)} problems")
        )
        for p in report.problems:
            affected = f" (affects {', '.join(p.versions)})" if p.versions else ""
            print(shown(f"  {p.kind}: {p.subject}: {p.detail}{affected}"), file=sys.stderr)
        for cid in report.transient:
            print(f"  transient: chunk {cid} failed once and then read correctly", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_gc(args: argparse.Namespace) -> int:
    result = collect_garbage(workspace(args), dry_run=args.dry_run, lock_timeout=args.wait)
    plan = result.plan
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    verb, freeing = ("Would delete", "freeing") if args.dry_run else ("Deleted", "freed")
    size = plan.bytes if args.dry_run else result.freed_bytes
    print(f"{verb} {plural(len(plan.chunks), 'unused chunk')} and "
          f"{plural(len(plan.temp_files), 'temporary file')}, {freeing} {human_bytes(size)}"
          + (":" if args.dry_run and plan.temp_files else ""))  # fmt: skip
    if args.dry_run:
        for path, n in plan.temp_files:
            print(f"    {path} ({human_bytes(n)})")
        print("Nothing was changed (dry run). 'gc --json --dry-run' lists every chunk.")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace) -> int:
    ws = workspace(args)
    result = reindex(ws)
    if args.json:
        print_json({**result.to_json(), "catalog": str(ws.catalog.path)})
    else:
        print(f"Rebuilt the catalog from {result.added} manifests")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    s = stats(workspace(args))
    doc = s.to_json()
    if args.json:
        print_json(doc)
    else:
        print(f"{plural(s.models, 'model')}, {plural(s.versions, 'version')}, "
              f"{plural(s.chunks, 'chunk')}")  # fmt: skip
        print(
            f"logical {human_bytes(s.logical_bytes)}, unique {human_bytes(s.unique_bytes)} "
            f"(dedup {doc['dedup_ratio']}), stored {human_bytes(s.stored_bytes)} "
            f"(compression {doc['compression_ratio']})"
        )
        for title, rows in (("MODEL", s.by_model), ("DTYPE", s.by_dtype)):
            print()
            print_table(
                [title, "LOGICAL", "STORED", "RATIO"],
                [
                    [k, human_bytes(v.logical), human_bytes(v.stored), f"{v.ratio:.3f}"]
                    for k, v in sorted(rows.items())
                ],
            )
    return EXIT_OK


def add_parsers(commands: Commands) -> None:
    """The commands that check and tidy."""
    p = commands.add("verify", cmd_verify, "check stored data (exit 1 when problems are found)")
    p.add_argument("ref", nargs="?", help="one version (default: every version)")
    p.add_argument("--quick", action="store_true", help="presence and sizes only")

    p = commands.add("gc", cmd_gc, "delete chunks no version uses")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")

    commands.add("reindex", cmd_reindex, "rebuild the catalog from the manifests")
    commands.add("stats", cmd_stats, "sizes: logical, unique, stored")
