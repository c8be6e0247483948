"""Versions and labels: ``import``, ``ls``, ``log``, ``show``, ``diff``, ``label``, ``search``,
``export`` and ``rm``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from modelmanager.cli.common import (
    STRATEGY_HELP,
    Commands,
    manifest_json,
    parent_removed,
    when,
    workspace,
)
from modelmanager.cli.lineage import print_module_diff, print_related
from modelmanager.cli.output import (
    ProgressLine,
    human_bytes,
    human_count,
    plural,
    print_json,
    print_table,
    shown,
    signed_bytes,
)
from modelmanager.cli.structure import add_structure_option, print_structure
from modelmanager.core.catalog import VersionRow
from modelmanager.core.catalog.facts import dtype_name
from modelmanager.core.catalog.filters import ALL_OPTIONS as FILTER_OPTIONS
from modelmanager.core.catalog.filters import SORTS, UsageError, parse_query
from modelmanager.core.chunks.selection import STRATEGIES
from modelmanager.core.codecs import CODEC_NAMES, CodecSettings
from modelmanager.core.localfiles import SYMLINK_RULES
from modelmanager.core.repo.manifest import Manifest, TensorRecord
from modelmanager.errors import EXIT_OK, UserError
from modelmanager.services import history, lineage
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths


def _parse_meta(pairs: list[str]) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--meta takes KEY=VALUE, got {pair!r}")
        meta[key] = value
    return meta


def cmd_import(args: argparse.Namespace) -> int:
    ws = workspace(args)
    codec = CodecSettings(args.codec, args.level) if args.codec else None
    with ProgressLine("importing", enabled=not args.json) as ctx:
        result = import_paths(
            ws,
            [Path(p) for p in args.paths],
            args.model,
            message=args.message,
            labels=args.label,
            metadata=_parse_meta(args.meta),
            codec=codec,
            ctx=ctx,
            lock_timeout=args.wait,
            symlinks=args.symlinks,
        )
    m = result.manifest
    for device, why in sorted(result.device_problems.items()):
        print(f"  device {device} took no new pieces: {why}", file=sys.stderr)
    if args.json:
        print_json(result.to_json())
    else:
        print(
            f"Imported {shown(m.ref)}: {result.files} files, {human_bytes(result.logical_bytes)}, "
            f"{result.new_chunks} of {result.chunks} chunks new "
            f"({human_bytes(result.new_stored_bytes)} stored)"
        )
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    rows = history.list_models(workspace(args))
    if args.json:
        print_json([r.to_json() for r in rows])
        return EXIT_OK
    if not rows:
        print("No models yet. Import one with: modelmanager import PATH --model NAME")
        return EXIT_OK
    print_table(
        ["MODEL", "VERSIONS", "LATEST", "SIZE", "PARAMS", "LABELS", "UPDATED"],
        [
            [r.name, r.versions, r.latest, human_bytes(r.logical_bytes), human_count(r.parameters),
             ",".join(f"{k}@{v}" for k, v in sorted(r.labels.items())), when(r.updated)]
            for r in rows
        ],
    )  # fmt: skip
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    rows = history.log(workspace(args), args.model)
    if args.json:
        print_json([v.to_json() for v in rows])
    else:
        print_versions(rows)
    return EXIT_OK


def print_versions(rows: list[VersionRow], *, model: bool = False) -> None:
    """Versions as a table (with ``model``, the model's name first: several models)."""
    head = ["MODEL"] if model else []
    print_table(
        [*head, "VERSION", "CREATED", "SIZE", "PARAMS", "LABELS", "MESSAGE"],
        [
            [*([v.model] if model else []), v.seq, when(v.created), human_bytes(v.logical_bytes),
             human_count(v.parameters), ",".join(v.labels), v.message]
            for v in rows
        ],
    )  # fmt: skip


def cmd_show(args: argparse.Namespace) -> int:
    ws = workspace(args)
    m, labels = history.show(ws, args.ref)
    if args.structure:
        print_structure(m, as_json=args.json)
        return EXIT_OK
    removed = parent_removed(ws.repo, m)
    lin = lineage.related(ws, m.ref) if args.related else None
    if args.json:
        doc = {**manifest_json(m, labels, args.tensors), "parent_removed": removed}
        print_json(doc if lin is None else {**doc, "related": lin.to_json()})
        return EXIT_OK
    print_manifest(m, labels, args.tensors, " (removed)" if removed else "")
    if lin is not None:
        print()
        print_related(lin)
    return EXIT_OK


def print_manifest(m: Manifest, labels: dict[str, int], tensors: bool, parent_note: str = "",
                   where: str = "") -> None:  # fmt: skip
    """A version in detail (``show``, ``remote show NAME REF``); ``where``: 'REMOTE:' first."""
    own = sorted(k for k, v in labels.items() if v == m.seq)
    print(shown(f"{where}{m.ref}  {when(m.created)}  {', '.join(own)}"))
    if m.message:
        print(f"  {shown(m.message)}")
    print(
        f"  size {human_bytes(m.logical_bytes)}, {human_count(m.parameters)} parameters, "
        f"parent {m.parent or '-'}{parent_note}"
    )
    for key, value in sorted(m.metadata.items()):
        print(f"  {shown(key)}: {shown(str(value))}")
    mix = m.dtype_bytes()
    if mix:
        print("  dtypes: " + ", ".join(f"{k} {human_bytes(v)}" for k, v in sorted(mix.items())))
    print()
    print_table(
        ["FILE", "SIZE", "FORMAT", "TENSORS", "CHUNKS"],
        [[f.path, f.size, f.format, len(f.tensors), len(f.chunks)] for f in m.files],
    )
    if tensors:
        print()
        print_table(
            ["TENSOR", "DTYPE", "SHAPE", "PARAMS", "BYTES", "FILE"],
            [[t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", t.numel, t.nbytes,
              f.path] for f, t in m.tensors],
        )  # fmt: skip


def cmd_export(args: argparse.Namespace) -> int:
    with ProgressLine("exporting", enabled=not args.json) as ctx:
        result = export_ref(workspace(args), args.ref, Path(args.dest), force=args.force, ctx=ctx,
                            strategy=args.strategy)  # fmt: skip
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    print(f"Exported {shown(result.manifest.ref)}: {len(result.files)} files, "
          f"{human_bytes(result.bytes)} to {shown(str(result.dest))}")  # fmt: skip
    if result.degraded_chunks:
        print(f"  {result.degraded_chunks} chunks were read from redundancy (a piece was "
              "missing or corrupt); run 'modelmanager scrub', then 'repair'",
              file=sys.stderr)  # fmt: skip
    return EXIT_OK


def _tensor_type(t: TensorRecord | None) -> str:
    return f"{t.dtype}[{'x'.join(map(str, t.shape))}]" if t else "-"


def cmd_diff(args: argparse.Namespace) -> int:
    if args.structure:
        with ProgressLine("reading changed tensors", enabled=not args.json) as ctx:
            sd = lineage.structure(workspace(args), args.a, args.b, ctx)
        if args.json:
            print_json(sd.to_json())
        else:
            print_module_diff(sd)
        return EXIT_OK
    d = history.diff_refs(workspace(args), args.a, args.b)
    if args.json:
        print_json(d.to_json())
        return EXIT_OK
    print(
        f"{shown(d.a)} -> {shown(d.b)}: {d.count('added')} tensors added, "
        f"{d.count('removed')} removed, "
        f"{d.count('changed')} changed, {d.unchanged_tensors} unchanged; "
        f"size {signed_bytes(d.logical_delta)}"
    )
    for f in d.files:
        print(f"  file {f.status:8} {shown(f.path)}")
    for t in d.tensors:
        print(
            f"  {t.status:8} {shown(t.name)}  {_tensor_type(t.old)} -> {_tensor_type(t.new)}  "
            f"{signed_bytes(t.byte_delta)}"
        )
    return EXIT_OK


def cmd_label_log(args: argparse.Namespace) -> int:
    """``label log NAME``: every move of the model's labels, from its journal."""
    ws = workspace(args)
    model = ws.repo.resolve(args.name).model
    moves = ws.repo.label_log(model)
    if args.json:
        print_json([{k: e.get(k) for k in ("time", "label", "old", "new", "why", "host", "user")}
                    for e in moves])  # fmt: skip
        return EXIT_OK
    if not moves:
        print(shown(f"No label of {model} was moved since the journal began"))
        return EXIT_OK
    print_table(
        ["TIME", "LABEL", "FROM", "TO", "WHY", "BY"],
        [[str(e.get("time", ""))[:19].replace("T", " "), e.get("label", ""),
          _version_or_dash(e.get("old")), _version_or_dash(e.get("new")), e.get("why", ""),
          f"{e.get('user', '?')}@{e.get('host', '?')}"] for e in moves],
    )  # fmt: skip
    return EXIT_OK


def _version_or_dash(seq: object) -> str:
    return "-" if seq is None else str(seq)


def cmd_label(args: argparse.Namespace) -> int:
    if args.ref == "log" and not args.delete:
        return cmd_label_log(args)
    ws = workspace(args)
    if args.delete:
        result = history.remove_label(ws, args.ref, args.name, lock_timeout=args.wait)
        text = (
            f"Removed label {result.label} from {result.model} "
            f"(it was on version {result.previous})"
        )
    else:
        result = history.set_label(ws, args.ref, args.name, lock_timeout=args.wait)
        was = f" (was {result.previous})" if result.previous else ""
        text = f"{result.model}@{result.label} -> version {result.seq}{was}"
    if args.json:
        print_json(result.to_json())
    else:
        print(shown(text))
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    given = {option: getattr(args, option[2:]) for option in FILTER_OPTIONS}
    # The window's parser reads the same line: ``arch:llama`` is a filter in both.
    line = shlex.join([*args.text, *(f"{o}={v}" for o, v in given.items() if v is not None)])
    text, filters = parse_query(line)
    if not text.strip() and not filters.active:
        raise UsageError("search: give TEXT, a filter (--arch, --params, --dtype, --format, "
                         "--label, --size, --older, --newer, --license, --base), "
                         "or both")  # fmt: skip
    rows = workspace(args).catalog.search(text, filters)
    if args.json:
        print_json([v.to_json() for v in rows])
    elif not rows:
        print(f"Nothing matches {text!r}" if text.strip() else "Nothing matches these filters")
    else:
        print_table(
            ["REF", "ARCH", "PARAMS", "DTYPES", "FORMAT", "SIZE", "LABELS", "MESSAGE"],
            [[f"{v.model}@{v.seq}", v.facts.architecture or v.facts.model_type,
              human_count(v.parameters) if v.parameters else "",
              ",".join(map(dtype_name, sorted(v.dtypes, key=v.dtypes.__getitem__, reverse=True))),
              ",".join(v.facts.formats), human_bytes(v.logical_bytes), ",".join(v.labels),
              v.message] for v in rows],
        )  # fmt: skip
    return EXIT_OK


def _print_removal(plan: history.RemovalPlan, dry_run: bool) -> None:
    """What removing versions takes away: labels, history links, and the bytes it frees."""
    print(f"{'Would remove' if dry_run else 'Removed'} {shown(', '.join(plan.refs))} "
          f"({human_bytes(plan.logical_bytes)} of files)")  # fmt: skip
    if plan.labels:
        print(f"    labels that go with {'them' if len(plan.refs) > 1 else 'it'}: "
              + shown(", ".join(plan.labels)))  # fmt: skip
    if plan.children:
        made = shown(", ".join(plan.children))
        print(f"    made from it: {made} (their parent shows as removed)")
    if plan.emptied:
        print(f"    no version is left of {shown(', '.join(plan.emptied))}")
    shared = f"; {plural(plan.shared_chunks, 'chunk')} shared with other versions are kept"
    print(f"    {'frees' if dry_run else 'freed'} {human_bytes(plan.freed_bytes)} on the devices "
          f"({plural(len(plan.freed), 'chunk')} only {'these' if len(plan.refs) > 1 else 'it'} "
          f"used{shared if plan.shared_chunks else ''})")  # fmt: skip


def cmd_rm(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.dry_run:
        plan = history.plan_removal(ws, args.refs)
        if args.json:
            print_json({"dry_run": True, **plan.to_json()})
        else:
            _print_removal(plan, dry_run=True)
            if plan.labels and not args.force:
                print("It carries labels: removing it needs --force (or move the labels first).")
            print("Nothing was changed (dry run).")
        return EXIT_OK
    with ProgressLine("removing", enabled=not args.json) as ctx:
        result = history.remove_versions(ws, args.refs, force=args.force, ctx=ctx,
                                         lock_timeout=args.wait)  # fmt: skip
    if args.json:
        print_json({"dry_run": False, **result.plan.to_json(), "freed_bytes": result.freed_bytes})
    else:
        _print_removal(result.plan, dry_run=False)
    return EXIT_OK


def add_parsers(commands: Commands) -> None:
    """The commands on versions and labels."""
    p = commands.add("import", cmd_import, "import files or folders as a new version")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to import")
    p.add_argument("--model", required=True, help="model name (NAME or ORG/NAME)")
    p.add_argument("--message", "-m", default="", help="what this version is")
    p.add_argument("--label", "-l", action="append", default=[], help="label to set (repeatable)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="free metadata (repeatable)")  # fmt: skip
    p.add_argument("--codec", choices=CODEC_NAMES, help="codec (default: the repository's)")
    p.add_argument("--level", type=int, default=1, help="compression level (default 1)")
    p.add_argument("--symlinks", choices=SYMLINK_RULES, default="inside",
                   help="links: followed only inside the folder imported (inside, the "
                   "default), everywhere (follow), or never (refuse)")  # fmt: skip

    commands.add("ls", cmd_ls, "list models")

    p = commands.add("log", cmd_log, "list the versions of a model")
    p.add_argument("model")

    p = commands.add("show", cmd_show, "show a version (REF is NAME, NAME@3 or NAME@label)")
    p.add_argument("ref")
    p.add_argument("--tensors", action="store_true", help="list every tensor")
    add_structure_option(p)
    p.add_argument("--related", action="store_true", help="the versions sharing its tensors and "
                   "what share of its bytes (from the manifests: no weights read)")  # fmt: skip

    p = commands.add("export", cmd_export, "write a version's files, byte for byte, under DEST")
    p.add_argument("ref")
    p.add_argument("dest")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--strategy", choices=STRATEGIES, help=STRATEGY_HELP)

    p = commands.add("diff", cmd_diff, "tensors and files added, removed and changed")
    p.add_argument("a", metavar="REF")
    p.add_argument("b", metavar="REF")
    p.add_argument("--structure", action="store_true",
                   help="the modules that changed, with each changed tensor's relative change "
                   "||b-a||/||a|| (reads those tensors)")  # fmt: skip

    p = commands.add("label", cmd_label, "point a label at a version (or remove it); "
                     "'label log NAME' shows every move of the model's labels")  # fmt: skip
    p.add_argument("ref", help="the version (with --delete: the model); 'log' for the history "
                   "(a model called log: write log@N)")  # fmt: skip
    p.add_argument("name", help="label name, e.g. prod")
    p.add_argument("--delete", action="store_true", help="remove the label")

    p = commands.add("search", cmd_search, "find versions by name, label, message, metadata "
                     "and facts (architecture, parameters, dtype, format, size, age)")  # fmt: skip
    p.add_argument("text", nargs="*", metavar="TEXT", help="words to find (optional with filters)")
    p.add_argument("--arch", help="architecture or model type contains this, e.g. llama")
    p.add_argument("--params", metavar="RANGE", help="parameter count: 6B..9B, >1B, <500M")
    p.add_argument("--dtype", help="holds tensors of this dtype, e.g. bf16, f32, q4_k")
    p.add_argument("--format", help="has a file of this format: safetensors, gguf, pytorch, ...")
    p.add_argument("--label", help="carries this label")
    p.add_argument("--size", metavar="RANGE", help="size of its files: '>4GB', 1GiB..8GiB")
    p.add_argument("--older", metavar="AGE", help="made more than AGE ago: 30d, 12h, 2w")
    p.add_argument("--newer", metavar="AGE", help="made less than AGE ago: 30d, 12h, 2w")
    p.add_argument("--license", help="the model card's license, exactly: apache-2.0, mit")
    p.add_argument("--base", help="the model card's base model contains this")
    p.add_argument(
        "--sort",
        choices=SORTS,
        default="name",
        help="name (a to z), or params, size, date (largest, newest first)",
    )

    p = commands.add("rm", cmd_rm, "remove versions, and the chunks only they use")
    p.add_argument("refs", nargs="+", metavar="REF", help="NAME@N or NAME@LABEL (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="only say what would go, and the bytes it would free")  # fmt: skip
    p.add_argument("--force", action="store_true", help="also when a version carries labels")
