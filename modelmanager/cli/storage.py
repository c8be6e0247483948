"""Where and how data is stored: ``device ...``, ``policy``, ``codec``, ``recompress``, and the
redundancy commands ``scrub``, ``repair`` and ``rebalance``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelmanager.cli.common import Commands, workspace
from modelmanager.cli.output import (
    ProgressLine,
    human_bytes,
    plural,
    print_json,
    print_table,
    shown,
)
from modelmanager.core.codecs import CODEC_NAMES, CodecSettings
from modelmanager.errors import EXIT_OK, EXIT_PROBLEMS, UserError
from modelmanager.services import devices, policies, redundancy
from modelmanager.services.device_plans import ForgetPlan, shared_file_systems, sharing_warning
from modelmanager.services.recompress import recompress
from modelmanager.services.redundancy import RepairReport


def cmd_device_add(args: argparse.Namespace) -> int:
    added = devices.add_device(
        workspace(args), Path(args.path), name=args.name, weight=args.weight, tier=args.tier,
        lock_timeout=args.wait,
    )  # fmt: skip
    device = added.device
    if added.shares_with and not args.json:
        print(f"warning: {added.sharing_text()}", file=sys.stderr)
    if args.json:
        print_json(added.to_json())
    elif added.recognised:
        print(f"Recognised device {device.name}: now at {device.path}")
    else:
        print(f"Added device {device.name} at {device.path} (weight {device.weight:g}, "
              f"{device.tier}); run 'rebalance' to spread existing data onto it")  # fmt: skip
    return EXIT_OK


def cmd_device_ls(args: argparse.Namespace) -> int:
    ws = workspace(args)
    infos = devices.list_devices(ws)
    if args.json:
        print_json([i.to_json() for i in infos])
        return EXIT_OK
    print_table(
        ["DEVICE", "STATE", "TIER", "WEIGHT", "USED", "FREE", "CAPACITY", "CHUNKS", "HOT", "PATH"],
        [[i.device.name, i.status, i.device.tier, f"{i.device.weight:g}", human_bytes(i.used),
          human_bytes(i.free) if i.free is not None else "-",
          human_bytes(i.capacity) if i.capacity is not None else "-", i.chunks,
          human_bytes(i.hot) if i.hot else "-", str(i.root)]
         for i in infos],
    )  # fmt: skip
    warning = sharing_warning(shared_file_systems(ws))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _print_plan(args: argparse.Namespace, plan: redundancy.MovePlan, what: str) -> int:
    """A move plan (rebalance or drain preview): pieces, bytes, onto which devices."""
    if args.json:
        print_json(plan.to_json())
        return EXIT_OK if not plan.stuck else EXIT_PROBLEMS
    print(f"{what} would move {plural(len(plan.moves), 'piece')} ({human_bytes(plan.bytes)})"
          + (":" if plan.moves else ""))  # fmt: skip
    for name, size in sorted(plan.onto().items()):
        print(f"    onto {name}: {human_bytes(size)}")
    if plan.stuck:
        print(f"{plural(len(plan.stuck), 'piece')} ({human_bytes(plan.stuck_bytes)}) fit on no "
              "other device: it would be refused", file=sys.stderr)  # fmt: skip
    print("Nothing was changed (dry run).")
    return EXIT_OK if not plan.stuck else EXIT_PROBLEMS


def _print_forget(args: argparse.Namespace, plan: ForgetPlan) -> int:
    """The preview of forgetting a device: chunks left under-replicated, chunks lost."""
    if args.json:
        print_json({"dry_run": True, **plan.to_json()})
        return EXIT_OK if not plan.lost else EXIT_PROBLEMS
    held = (f"holds {plural(plan.pieces, 'piece')} ({human_bytes(plan.bytes)})" if plan.readable
            else "cannot be read; counting every chunk the other devices lack")  # fmt: skip
    print(f"Removing device {plan.device} ({held}) would leave:")
    print(f"    {plural(plan.under_replicated, 'chunk')} under-replicated until 'repair'"
          + (f" (models: {shown(', '.join(plan.models_under))})" if plan.models_under
             else ""))  # fmt: skip
    print(f"    {plural(plan.lost, 'chunk')} lost"
          + (f" (models: {shown(', '.join(plan.models_lost))})" if plan.models_lost
             else ""))  # fmt: skip
    if plan.lost:
        print(f"It would be refused without --allow-loss: {shown(plan.loss_text())}.",
              file=sys.stderr)  # fmt: skip
    print("Nothing was changed (dry run).")
    return EXIT_OK if not plan.lost else EXIT_PROBLEMS


def cmd_device_rm(args: argparse.Namespace) -> int:
    if args.allow_loss and not args.force:
        raise UserError("--allow-loss goes with --force (a drain loses nothing)")
    if args.dry_run:
        if args.force:
            return _print_forget(args, devices.preview_forget(workspace(args), args.name))
        plan = redundancy.preview_moves(workspace(args), draining=args.name)
        return _print_plan(args, plan, f"Draining {args.name}")
    with ProgressLine("draining", enabled=not args.json) as ctx:
        result = devices.remove_device(
            workspace(args), args.name, drain=args.drain, force=args.force,
            allow_loss=args.allow_loss, ctx=ctx, lock_timeout=args.wait,
        )  # fmt: skip
    if args.json:
        print_json(result.to_json())
    elif args.drain:
        print(f"Moved {result.drained_pieces} pieces ({human_bytes(result.drained_bytes)}) off "
              f"{result.device.name} and removed it")  # fmt: skip
    else:
        print(f"Forgot device {result.device.name}; its pieces count as missing until you run "
              "'repair'")  # fmt: skip
        gone = result.forgotten
        if gone is not None and gone.lost:
            print(f"lost: {shown(gone.loss_text())}", file=sys.stderr)
    return EXIT_OK


def cmd_device_set(args: argparse.Namespace) -> int:
    state = {"offline": "offline", "online": "online"}.get(args.device_command)
    weight, tier, rename = (getattr(args, k, None) for k in ("weight", "tier", "rename"))
    if args.device_command == "set" and weight is None and tier is None and rename is None:
        raise UserError("say what to change: --weight, --tier and/or --rename")
    changed = devices.set_device(
        workspace(args), args.name, state=state, weight=weight, tier=tier, rename=rename,
        lock_timeout=args.wait,
    )  # fmt: skip
    device = changed.device
    if args.json:
        print_json(changed.to_json())
    else:
        renamed = f" (was {args.name})" if device.name != args.name else ""
        print(f"Device {device.name}{renamed}: {device.state}, weight {device.weight:g}, "
              f"{device.tier}")  # fmt: skip
    return EXIT_OK


def _model_and_value(words: list[str], usage: str) -> tuple[str | None, str]:
    """``[MODEL] VALUE`` of a ``set`` sub-command: (None, VALUE) for the repository's default."""
    if len(words) not in (1, 2):
        raise UserError(f"usage: {usage}")
    return (None if len(words) == 1 else words[0]), words[-1]


def cmd_policy(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.policy_command == "show":
        models = {k: str(v) for k, v in ws.repo.policies.models.items()}
        if args.json:
            print_json({"default": str(ws.repo.policies.default), "models": models})
        else:
            print(f"default: {ws.repo.policies.default}")
            for name, value in sorted(models.items()):
                print(f"{shown(name)}: {value}")
        return EXIT_OK
    model, text = _model_and_value(args.words, "policy set [MODEL] copies=N|ec=K+M")
    if args.dry_run:
        plan = policies.preview_policy(ws, text, model)
        if args.json:
            print_json({"dry_run": True, "model": model, **plan.to_json()})
            return EXIT_OK
        print(f"Setting {model or 'the repository'} to {plan.policy} would change "
              f"{plural(plan.chunks, 'chunk')}:")  # fmt: skip
        print(f"    write {plural(plan.write_pieces, 'piece')} ({human_bytes(plan.write_bytes)})")
        print(f"    then remove {plural(plan.remove_pieces, 'piece')} "
              f"({human_bytes(plan.remove_bytes)})")  # fmt: skip
        print("Its chunks would then survive losing " + (
            plural(plan.tolerates, "device") if plan.tolerates else "no device") + ".")  # fmt: skip
        warning = sharing_warning(shared_file_systems(ws))
        if warning:  # the figure above counts each file system once
            print(f"    (devices on one file system count as one: {warning})")
        problem = ws.repo.chunks.room_problem(plan.write_bytes, f"converting to {plan.policy}")
        if problem is not None:
            print(f"It would be refused: {problem}.", file=sys.stderr)
        print("Nothing was changed (dry run).")
        return EXIT_OK
    with ProgressLine("converting", enabled=not args.json) as ctx:
        changed = policies.set_policy(ws, text, model, ctx=ctx, lock_timeout=args.wait)
    report = changed.report
    if args.json:
        print_json(changed.to_json())
    else:
        print(
            f"Policy of {model or 'the repository'} is now {changed.policy}: converted "
            f"{report.repaired_chunks} chunks ({human_bytes(report.written_bytes)} written)"
        )
        _print_repair_problems(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _print_repair_problems(report: RepairReport) -> None:
    if report.held_back:
        print(f"  held back: {shown(report.held_back)}", file=sys.stderr)
    for device, why in sorted(report.device_problems.items()):
        print(f"  device {device} took no new pieces: {why}", file=sys.stderr)
    for item in report.lost:
        print(f"  lost: chunk {item.chunk} (affects {shown(', '.join(item.versions))})",
              file=sys.stderr)  # fmt: skip
    for failure in report.failed:
        print(f"  not repaired: chunk {failure.chunk}: {shown(failure.reason)}", file=sys.stderr)


def cmd_scrub(args: argparse.Namespace) -> int:
    with ProgressLine("scrubbing", enabled=not args.json) as ctx:
        report = redundancy.scrub(workspace(args), ctx=ctx)
    if args.json:
        print_json(report.to_json())
        return EXIT_OK if report.ok else EXIT_PROBLEMS
    found = (
        f"{len(report.missing)} missing, {len(report.corrupt)} corrupt, "
        f"{len(report.under_replicated)} under-replicated, {len(report.lost)} lost, "
        f"{len(report.metadata)} metadata copies to rewrite"
    )
    print(f"scrub: {report.chunks} chunks, {report.pieces} pieces: "
          f"{'all good' if report.ok else found}")  # fmt: skip

    def counted(counts: dict[str, int]) -> str:  # "1 corrupt, 1 under-replicated"
        return ", ".join(f"{v} {k.replace('_', '-')}" for k, v in counts.items())

    for device, counts in sorted(report.by("device").items()):
        print(f"  device {device}: {counted(counts)}")
    for model, counts in sorted(report.by("models").items()):
        print(f"  model {shown(model)}: {counted(counts)}")
    for problem in report.metadata:
        print(shown(f"  metadata: {problem}"), file=sys.stderr)
    if not report.ok:
        print("Run 'modelmanager repair' to rebuild what redundancy allows.", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_repair(args: argparse.Namespace) -> int:
    with ProgressLine("repairing", enabled=not args.json) as ctx:
        report = redundancy.repair(workspace(args), ctx=ctx, lock_timeout=args.wait)
    if args.json:
        print_json(report.to_json())
    else:
        print(
            f"repair: {report.repaired_chunks} chunks repaired, {report.written_pieces} pieces "
            f"({human_bytes(report.written_bytes)}) written, {report.removed_pieces} removed"
        )
        _print_repair_problems(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_rebalance(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _print_plan(args, redundancy.preview_moves(workspace(args)), "Rebalance")
    with ProgressLine("rebalancing", enabled=not args.json) as ctx:
        report = redundancy.rebalance(workspace(args), ctx=ctx,
                                      lock_timeout=args.wait)  # fmt: skip
    if args.json:
        print_json(report.to_json())
    else:
        print(f"rebalance: moved {report.moved_pieces} pieces ({human_bytes(report.moved_bytes)})")
        for item in report.failed:
            print(f"  not moved: {item.piece} ({item.device}): {item.reason}",
                  file=sys.stderr)  # fmt: skip
    return EXIT_OK if not report.failed else EXIT_PROBLEMS


def cmd_codec(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.codec_command == "show":
        own = {k: v for k, v in ws.repo.policies.codecs.items() if k != "*"}
        base = ws.repo.codec_for("-")
        if args.json:  # shaped as policy show, each codec as codec set says it
            print_json({"default": {"codec": base.name, "level": base.level},
                        "models": {k: {"codec": v.name, "level": v.level}
                                   for k, v in own.items()}})  # fmt: skip
        else:
            print(f"repository: {base.name} (level {base.level})")
            for name, value in sorted(own.items()):
                print(f"{shown(name)}: {value.name}:{value.level}")
        return EXIT_OK
    model, name = _model_and_value(args.words, "codec set [MODEL] CODEC")
    changed = policies.set_codec(ws, CodecSettings(name, args.level), model,
                                lock_timeout=args.wait)  # fmt: skip
    settings = changed.settings
    if args.json:
        print_json(changed.to_json())
    else:
        print(f"New chunks of {model or 'the repository'} use {settings.name}; "
              "run 'recompress REF --codec ...' to convert what is stored")  # fmt: skip
    return EXIT_OK


def cmd_recompress(args: argparse.Namespace) -> int:
    with ProgressLine("recompressing", enabled=not args.json) as ctx:
        report = recompress(workspace(args), args.ref, CodecSettings(args.codec, args.level),
                            ctx=ctx, lock_timeout=args.wait)  # fmt: skip
    if args.json:
        print_json(report.to_json())
    else:
        print(f"Recompressed {report.ref} with {report.codec}: {report.rewritten} of "
              f"{report.chunks} chunks rewritten, stored {human_bytes(report.stored_before)} "
              f"-> {human_bytes(report.stored_after)}")  # fmt: skip
    return EXIT_OK


def add_parsers(commands: Commands) -> None:
    """The storage and redundancy commands."""
    p = commands.add("device", cmd_device_ls, "storage devices: add, ls, rm, offline, online, set")
    dev = p.add_subparsers(dest="device_command", metavar="ACTION")
    d = commands.action(dev, "add", cmd_device_add, "register a folder (an empty one, or a "
                        "device of this repository mounted elsewhere)")  # fmt: skip
    d.add_argument("path")
    d.add_argument("--name", help="device name (default: the folder's name)")
    d.add_argument("--weight", type=float, default=1.0, help="share of new data (default 1)")
    d.add_argument("--tier", choices=("hot", "warm", "cold"), default="hot")
    commands.action(dev, "ls", cmd_device_ls, "list devices")
    d = commands.action(dev, "rm", cmd_device_rm, "remove a device")
    d.add_argument("name")
    how = d.add_mutually_exclusive_group(required=True)
    how.add_argument("--drain", action="store_true", help="move its data off first")
    how.add_argument("--force", action="store_true",
                     help="forget a dead disk now (refused while it would lose data)")  # fmt: skip
    d.add_argument(
        "--allow-loss",
        action="store_true",
        help="with --force: forget it even though chunks are on no other device",
    )
    d.add_argument("--dry-run", action="store_true",
                   help="with --drain: what would move where, and if it fits; with --force: "
                   "which chunks become under-replicated or lost, of which models")  # fmt: skip
    for state in ("offline", "online"):
        commands.action(dev, state, cmd_device_set, f"mark a device {state}").add_argument("name")
    d = commands.action(dev, "set", cmd_device_set, "rename a device, change weight or tier")
    d.add_argument("name")
    d.add_argument("--rename", metavar="NEW_NAME", help="a new name (its data stays put)")
    d.add_argument("--weight", type=float, help="share of new data")
    d.add_argument("--tier", choices=("hot", "warm", "cold"))

    p = commands.add("policy", cmd_policy, "redundancy: policy show | policy set [MODEL] POLICY")
    p.add_argument("policy_command", choices=("show", "set"))
    p.add_argument("words", nargs="*", metavar="[MODEL] POLICY",
                   help="copies=N or ec=K+M, for MODEL or (without it) the repository")  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help="with set: what converting writes and removes, and if it fits")  # fmt: skip

    p = commands.add("codec", cmd_codec, "compression: codec show | codec set [MODEL] CODEC")
    p.add_argument("codec_command", choices=("show", "set"))
    p.add_argument("words", nargs="*", metavar="[MODEL] CODEC",
                   help=f"one of {', '.join(CODEC_NAMES)}, for MODEL or the "
                   "repository")  # fmt: skip
    p.add_argument("--level", type=int, default=1, help="zstd level (default 1)")

    p = commands.add("recompress", cmd_recompress,
                     "re-encode a version's chunks with another codec (safe to interrupt and "
                     "rerun)")  # fmt: skip
    p.add_argument("ref")
    p.add_argument("--codec", choices=CODEC_NAMES, required=True)
    p.add_argument("--level", type=int, default=1, help="zstd level (default 1)")

    commands.add("scrub", cmd_scrub, "read and check every stored piece (exit 1 on problems)")
    commands.add("repair", cmd_repair, "rebuild missing or corrupt pieces from good ones")
    p = commands.add("rebalance", cmd_rebalance, "move pieces to where placement now puts them")
    p.add_argument("--dry-run", action="store_true", help="only say what would move where")
