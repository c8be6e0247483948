"""Remote repositories: ``remote add|ls|rm|show``, ``push`` and ``pull``."""

from __future__ import annotations

import argparse
import sys

from modelmanager.cli.common import Commands, manifest_json, parent_removed, workspace
from modelmanager.cli.output import (
    ProgressLine,
    human_bytes,
    plural,
    print_json,
    print_table,
    shown,
)
from modelmanager.cli.versions import print_manifest, print_versions
from modelmanager.core.catalog import VersionRow
from modelmanager.core.remote.spec import DEFAULT_RETRIES, MAX_RETRIES
from modelmanager.errors import EXIT_OK, UserError
from modelmanager.services import remotes


def cmd_remote_add(args: argparse.Namespace) -> int:
    secret = None
    if args.access_key_id:
        if sys.stdin.isatty():
            import getpass

            secret = getpass.getpass(f"Secret access key for {args.access_key_id}: ")
        else:
            secret = sys.stdin.readline().strip()
    spec = remotes.add_remote(args.name, args.url, endpoint=args.endpoint, profile=args.profile,
                              access_key=args.access_key_id, secret_key=secret,
                              retries=args.retries,
                              conditional_writes=args.conditional_writes)  # fmt: skip
    if args.json:
        print_json(spec.to_json())
    else:
        keys = "; keys kept in the OS keyring" if args.access_key_id else ""
        print(f"Added remote {spec.name} at {spec.url}{keys}")
    return EXIT_OK


def cmd_remote_ls(args: argparse.Namespace) -> int:
    specs = remotes.list_remotes()
    if args.json:
        print_json([r.to_json() for r in specs])
    elif specs:
        print_table(["REMOTE", "URL", "ENDPOINT", "PROFILE", "RETRIES", "ACCESS"],
                    [[r.name, r.url, r.endpoint or "-", r.profile or "-", r.retries,
                      "read-only" if r.read_only else "read-write"] for r in specs])  # fmt: skip
    else:
        print("No remotes. Add one: modelmanager remote add NAME s3://BUCKET/PREFIX")
    return EXIT_OK


def cmd_remote_rm(args: argparse.Namespace) -> int:
    spec = remotes.remove_remote(args.name)
    if args.json:
        print_json(spec.to_json())
    else:
        print(f"Forgot remote {spec.name} ({spec.url}); nothing on it was touched")
    return EXIT_OK


def cmd_remote_show(args: argparse.Namespace) -> int:
    remote = remotes.open_remote(args.name)
    if args.ref:
        m = remote.resolve(args.ref)
        labels = remote.read_labels(m.model)
        removed = parent_removed(remote, m)
        if args.json:
            print_json({**manifest_json(m, labels, args.tensors), "parent_removed": removed})
        else:
            print_manifest(m, labels, args.tensors, " (removed)" if removed else "",
                           where=f"{args.name}:")  # fmt: skip
        return EXIT_OK
    rows = []
    for model in remote.model_names():  # manifests come from the cache once read
        labels = remote.read_labels(model)
        rows += [VersionRow.of(remote.read_manifest(model, seq), labels)
                 for seq in remote.version_numbers(model)]  # fmt: skip
    if args.json:
        print_json([v.to_json() for v in rows])
    else:
        print_versions(rows, model=True)
    return EXIT_OK


def _transfer_report(args: argparse.Namespace, verb: str, r: remotes.TransferResult) -> None:
    if args.json:
        print_json(r.to_json())
        return
    if r.notice:  # the other side numbers it differently: say so before anything else
        print(shown(r.notice), file=sys.stderr)
    stored = r.stored_ref or r.ref
    name = shown(r.ref) if stored == r.ref else f"{shown(r.ref)} as {shown(stored)}"
    state = "" if r.manifest_written else " (it was there already)"
    print(f"{verb} {name}{state}: {plural(r.chunks_sent, 'chunk')} "
          f"({human_bytes(r.bytes_sent)}) moved, {r.chunks_skipped} already there")  # fmt: skip
    if r.labels:
        print(shown(f"  labels set: {', '.join(r.labels)}"))
    if r.labels_back:
        print(shown(f"  labels set here from the other side's newer moves: "
                    f"{', '.join(r.labels_back)}"))  # fmt: skip
    for conflict in r.label_conflicts:
        if isinstance(conflict, remotes.LabelConflict):  # a label without a journal
            print(shown(f"  {conflict}; --move-labels moves it"), file=sys.stderr)
        else:
            print(shown(f"  label conflict in {conflict.model}, {conflict}"), file=sys.stderr)


def cmd_push(args: argparse.Namespace) -> int:
    remote = remotes.open_remote(args.remote)
    with ProgressLine("pushing", enabled=not args.json) as ctx:
        result = remotes.push(workspace(args), args.ref, remote, ctx=ctx,
                              move_labels=args.move_labels, exact=args.exact,
                              keep_local=args.keep_local, lock_timeout=args.wait)  # fmt: skip
    _transfer_report(args, "Pushed", result)
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    if (args.ref is None) == (not args.all):
        raise UserError("name one version to pull (NAME@N), or --all for every version")
    remote = remotes.open_remote(args.remote)
    ws = workspace(args)
    with ProgressLine("pulling", enabled=not args.json) as ctx:
        if args.all:
            results = remotes.pull_all(ws, remote, ctx=ctx, lock_timeout=args.wait,
                                       move_labels=args.move_labels, exact=args.exact,
                                       keep_local=args.keep_local)  # fmt: skip
        else:
            results = [remotes.pull(ws, remote, args.ref, ctx=ctx, lock_timeout=args.wait,
                                    move_labels=args.move_labels, exact=args.exact,
                                    keep_local=args.keep_local)]  # fmt: skip
    if args.json:
        print_json(results[0].to_json() if not args.all else [r.to_json() for r in results])
        return EXIT_OK
    for result in results:
        _transfer_report(args, "Pulled", result)
    if args.all:
        new = sum(r.manifest_written for r in results)
        print(f"{plural(len(results), 'version')} on {shown(args.remote)}, "
              f"{new} new here")  # fmt: skip
    return EXIT_OK


def _retries(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_RETRIES:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_RETRIES}, not {text!r}")
    return n


MOVE_LABELS_HELP = ("a label both sides moved differently: the sending side's move wins "
                    "(default: the newer move wins on both sides, and it is said)")  # fmt: skip
KEEP_LOCAL_HELP = ("a label both sides moved differently: this repository's move wins and is "
                   "recorded on both sides (default: the newer move wins)")  # fmt: skip
EXACT_HELP = ("refuse when the other side has this version number for another version "
              "(default: take the next free number there and say so)")  # fmt: skip


def add_parsers(commands: Commands) -> None:
    """``remote`` and its actions, ``push``, ``pull``."""
    p = commands.add("remote", cmd_remote_ls, "remote repositories: add, ls, rm, show")
    rem = p.add_subparsers(dest="remote_command", metavar="ACTION")
    r = commands.action(rem, "add", cmd_remote_add, "remember a remote: s3://BUCKET/PREFIX, "
                        "http(s)://URL (read-only) or file:///PATH")  # fmt: skip
    r.add_argument("name")
    r.add_argument("url")
    r.add_argument("--endpoint", help="S3 endpoint URL (MinIO, Ceph RGW, ...)")
    r.add_argument("--profile", help="AWS profile to use (from ~/.aws)")
    r.add_argument("--access-key-id", help="S3 access key id; the secret is asked for (or read "
                   "from standard input) and kept in the OS keyring")  # fmt: skip
    r.add_argument("--retries", type=_retries, default=DEFAULT_RETRIES, metavar="N",
                   help=f"attempts per S3 request before a transfer fails (default "
                   f"{DEFAULT_RETRIES})")  # fmt: skip
    r.add_argument("--no-conditional-writes", dest="conditional_writes", action="store_false",
                   help="claim version numbers under a lease lock object, not with S3 "
                   "conditional writes (for a server that mishandles If-None-Match)")  # fmt: skip
    commands.action(rem, "ls", cmd_remote_ls, "list remotes")
    r = commands.action(rem, "rm", cmd_remote_rm, "forget a remote (its data stays)")
    r.add_argument("name")
    r = commands.action(rem, "show", cmd_remote_show, "a remote's models and versions, or one "
                        "version (manifests only: no weights are downloaded)")  # fmt: skip
    r.add_argument("name")
    r.add_argument("ref", nargs="?")
    r.add_argument("--tensors", action="store_true", help="list every tensor of REF")

    p = commands.add("push", cmd_push, "send a version, the chunks the remote lacks, and its "
                     "labels")  # fmt: skip
    p.add_argument("ref")
    p.add_argument("remote")
    p.add_argument("--move-labels", action="store_true", help=MOVE_LABELS_HELP)
    p.add_argument("--keep-local", action="store_true", help=KEEP_LOCAL_HELP)
    p.add_argument("--exact", action="store_true", help=EXACT_HELP)

    p = commands.add("pull", cmd_pull, "fetch a version, the chunks this repository lacks, and "
                     "its labels")  # fmt: skip
    p.add_argument("remote")
    p.add_argument("ref", nargs="?", help="the version (NAME@N, NAME@LABEL); or --all")
    p.add_argument("--all", action="store_true",
                   help="every version of every model on the remote, with labels")  # fmt: skip
    p.add_argument("--move-labels", action="store_true", help=MOVE_LABELS_HELP)
    p.add_argument("--keep-local", action="store_true", help=KEEP_LOCAL_HELP)
    p.add_argument("--exact", action="store_true", help=EXACT_HELP)
