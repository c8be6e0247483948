"""``pin``, ``unpin`` and ``hot-tier``: keep a version's chunks hot (plain copies on a hot-tier
device), by hand or, for recently loaded versions, by the hot-tier job."""

from __future__ import annotations

import argparse

from modelmanager.cli.common import Commands, workspace
from modelmanager.cli.output import ProgressLine, plural, print_json, print_table, shown
from modelmanager.core.units import human_bytes
from modelmanager.errors import EXIT_OK, UserError
from modelmanager.services.hot_tier import (
    DEFAULT_PROMOTE_WITHIN_DAYS,
    apply_hot_tier,
    plan_hot_tier,
)
from modelmanager.services.pin_records import fill_limit, pins, set_fill_limit
from modelmanager.services.pinning import pin, plan_pin, unpin


def cmd_pin(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.fill_limit is not None:
        limit = set_fill_limit(ws, args.fill_limit)
        if args.json:
            print_json({"fill_limit": limit})
        else:
            print(f"Hot devices are filled by pins to at most {limit:.0%} of their size")
        if not args.ref:
            return EXIT_OK
    if args.list:
        found = pins(ws.repo)
        if args.json:
            print_json({"pins": [p.to_json() for p in found]})
        elif found:
            print_table(["VERSION", "PINNED", "BY"],
                        [[shown(p.ref), p.since, "hot-tier" if p.auto else "you"]
                         for p in found])  # fmt: skip
        else:
            print("No version is pinned.")
        if not args.json:
            print(f"Fill limit of hot devices: {fill_limit(ws.repo):.0%}")
        return EXIT_OK
    if not args.ref:
        raise UserError("pin needs a version (NAME[@ref]), or --list")
    if args.dry_run:
        plan = plan_pin(ws.repo, args.ref)
        if args.json:
            print_json(plan.to_json())
        else:
            print(shown(plan.text()) + ".")
            print("Nothing was changed (dry run).")
        return EXIT_OK
    with ProgressLine("pinning", enabled=not args.json) as ctx:
        r = pin(ws, args.ref, ctx=ctx)
    if args.json:
        print_json(r.to_json())
    else:
        print(f"Pinned {shown(r.ref)} hot on {shown(r.device)}: {plural(r.chunks, 'chunk')}, "
              f"{r.written} new hot {'copy' if r.written == 1 else 'copies'} "
              f"({human_bytes(r.written_bytes)})")  # fmt: skip
        if r.demoted:
            print(f"Demoted {', '.join(shown(d) for d in r.demoted)} (least recently used) to "
                  f"stay under the fill limit: {human_bytes(r.freed_bytes)} of hot copies "
                  "dropped; their pieces stay")  # fmt: skip
    return EXIT_OK


def cmd_hot_tier(args: argparse.Namespace) -> int:
    """Promote recently loaded versions and demote the least recently used automatic ones."""
    ws = workspace(args)
    if args.within <= 0:
        raise UserError(f"--within takes a number of days above 0, not {args.within}")
    plan = plan_hot_tier(ws.repo, within_days=args.within)
    if args.dry_run:
        if args.json:
            print_json(plan.to_json())
        else:
            for line in plan.lines() if plan.changes_anything else ["The hot tier is settled."]:
                print(shown(line))
            print("Nothing was changed (dry run).")
        return EXIT_OK
    with ProgressLine("hot tier", enabled=not args.json) as ctx:
        r = apply_hot_tier(ws, previewed=plan, within_days=args.within, ctx=ctx,
                           lock_timeout=args.wait)  # fmt: skip
    if args.json:
        print_json(r.to_json())
        return EXIT_OK
    for m in plan.promote:
        print(f"Promoted {shown(m.ref)} hot ({human_bytes(m.write_bytes)} of new hot copies)")
    for m in plan.demote:
        print(f"Demoted {shown(m.ref)} (least recently used); its pieces stay")
    for m in plan.left_out:
        print(f"Left {shown(m.ref)} cold: its hot copies do not fit under the fill limit")
    print(f"{r.written} hot {'copy' if r.written == 1 else 'copies'} written "
          f"({human_bytes(r.written_bytes)}), {r.dropped} dropped "
          f"({human_bytes(r.dropped_bytes)})")  # fmt: skip
    return EXIT_OK


def cmd_unpin(args: argparse.Namespace) -> int:
    ref = unpin(workspace(args), args.ref)
    if args.json:
        print_json({"unpinned": ref})
    else:
        print(f"Unpinned {shown(ref)}; 'modelmanager gc' deletes its hot copies")
    return EXIT_OK


def add_parsers(commands: Commands) -> None:
    """The pin, hot-tier and unpin commands."""
    p = commands.add("pin", cmd_pin, "keep a version hot: a plain copy of each of its chunks "
                     "on a hot-tier device, read first by loads")  # fmt: skip
    p.add_argument("ref", nargs="?", help="NAME[@VERSION|@LABEL] (default: the latest)")
    p.add_argument("--list", action="store_true", help="list the pinned versions")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only say what pinning would write, and which versions it demotes",
    )
    p.add_argument("--fill-limit", type=float, metavar="SHARE",
                   help="set the share of a hot device pins may fill (default 0.9); past it "
                   "the least recently used pinned versions are demoted")  # fmt: skip
    p = commands.add("hot-tier", cmd_hot_tier, "promote recently loaded versions hot and demote "
                     "the least recently used promotions past each hot device's fill limit "
                     "(explicit pins stay)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help="only say what it would copy and drop, bytes per device")  # fmt: skip
    p.add_argument("--within", type=float, default=DEFAULT_PROMOTE_WITHIN_DAYS, metavar="DAYS",
                   help="versions loaded in the last DAYS count as recent (default "
                   f"{DEFAULT_PROMOTE_WITHIN_DAYS:g})")  # fmt: skip
    p = commands.add("unpin", cmd_unpin, "stop keeping a version hot (gc deletes its copies)")
    p.add_argument("ref", help="NAME[@VERSION|@LABEL]")
