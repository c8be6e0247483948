"""``modelmanager stores ...``: models other tools keep on this workstation (issue 10)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from modelmanager.cli.common import workspace
from modelmanager.cli.output import (
    ProgressLine,
    human_bytes,
    plural,
    print_json,
    print_table,
    shown,
)
from modelmanager.core.stores import Store, StoreModel, disk_size
from modelmanager.errors import EXIT_OK
from modelmanager.services import store_duplicates, stores


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _model_json(m: StoreModel, summaries: bool = False) -> dict[str, Any]:
    """A store's model as ``stores ls`` and ``stores show`` print it: ``files`` is a count,
    as everywhere, and ``file_list`` the files (as ``show`` names them)."""
    doc: dict[str, Any] = {
        "name": m.name, "revision": m.revision, "refs": list(m.refs), "ref": m.ref,
        "size": m.size, "modified": m.modified, "errors": m.errors, "files": len(m.files),
        "file_list": [{"name": f.name, "path": str(f.path), "size": f.size,
                       "weights": f.weights} for f in m.files],
    }  # fmt: skip
    if summaries:
        for entry, f in zip(doc["file_list"], m.files, strict=True):
            if f.weights:
                s = stores.summarize(f)
                entry.update(format=s.format, tensors=s.tensors, parameters=s.parameters,
                             dtypes=list(s.dtypes), error=s.error)  # fmt: skip
    return doc


def cmd_stores_ls(args: argparse.Namespace) -> int:
    found = stores.all_stores()
    listed = [(s, s.models()) for s in found]
    if args.json:
        print_json([{"kind": s.kind, "name": s.title, "root": str(s.root),
                     "models": [_model_json(m, args.tensors) for m in models]}
                    for s, models in listed])  # fmt: skip
        return EXIT_OK
    if not found:
        print("No model stores found (Hugging Face cache, Ollama, LM Studio). Add a folder: "
              "modelmanager stores add PATH")  # fmt: skip
        return EXIT_OK
    for store, models in listed:
        total = disk_size(models)
        print(f"{shown(store.title)}  {shown(str(store.root))}  "
              f"({plural(len(models), 'model')}, {human_bytes(total)})")  # fmt: skip
        rows = [[m.ref if len(m.ref) < 60 else m.name + "@" + m.revision[:12],
                 ",".join(m.refs) or "-", str(len(m.files)), human_bytes(m.size),
                 _when(m.modified), f"{len(m.errors)} errors" if m.errors else "ok"]
                for m in models]  # fmt: skip
        if rows:
            print_table(["MODEL", "REFS", "FILES", "SIZE", "MODIFIED", "STATE"], rows)
        for m in models:
            for err in m.errors:
                print(f"  {shown(m.ref)}: {shown(err)}")
        print()
    return EXIT_OK


def cmd_stores_show(args: argparse.Namespace) -> int:
    store = stores.find_store(args.store)
    model = stores.find_model(store, args.model)
    if args.json:
        print_json(_model_json(model, summaries=True))
        return EXIT_OK
    refs = f"  refs: {', '.join(model.refs)}" if model.refs else ""
    print(shown(f"{store.title}: {model.ref}  {human_bytes(model.size)}{refs}"))
    rows = []
    for f in model.files:
        s = stores.summarize(f) if f.weights else None
        if s is None:
            what = "-"
        elif s.error:
            what = s.error[:60]
        else:
            what = f"{s.format}, {plural(s.tensors, 'tensor')}, {', '.join(s.dtypes)}"
        rows.append([f.name, human_bytes(f.size), what, str(f.path)])
    print_table(["FILE", "SIZE", "TENSORS (FROM THE HEADER)", "PATH"], rows)
    for err in model.errors:
        print(f"error: {shown(err)}")
    return EXIT_OK


def cmd_stores_add(args: argparse.Namespace) -> int:
    store = stores.add_store(Path(args.path), args.kind, args.name or "")
    print(shown(f"Added {store.title} ({store.kind}) at {store.root}"))
    return EXIT_OK


def cmd_stores_rm(args: argparse.Namespace) -> int:
    store = stores.remove_store(args.which)
    print(shown(f"Forgot {store.title} at {store.root}; none of its files were touched"))
    return EXIT_OK


def cmd_stores_dups(args: argparse.Namespace) -> int:
    found = stores.all_stores()
    spaces = [workspace(args)]
    with ProgressLine("comparing", enabled=not args.json) as ctx:
        groups = store_duplicates.find_duplicates(found, spaces, ctx)
    freeable = sum(g.freeable for g in groups)
    if args.json:
        print_json({"freeable": freeable, "groups": [g.to_json() for g in groups]})
        return EXIT_OK
    if not groups:
        print("No duplicate files across the stores and this repository.")
        return EXIT_OK
    for g in groups:
        print(f"{human_bytes(g.size)} x {g.physical} copies ({human_bytes(g.freeable)} "
              f"freeable), blake3 {g.digest[:16]}")  # fmt: skip
        for where in g.copies:
            print(f"    {shown(str(where))}")
    print(f"\n{plural(len(groups), 'duplicate')}: keeping one copy of each would free "
          f"{human_bytes(freeable)}")  # fmt: skip
    return EXIT_OK


def _print_removal(store: Store, plan: stores.Removal, dry: bool) -> None:
    verb = "Would remove" if dry else "Removing"
    print(f"{verb} {plural(len(plan.paths), 'path')} from {shown(store.title)} "
          f"({human_bytes(plan.bytes)} freed):")  # fmt: skip
    for p in plan.paths:
        print(f"    {shown(str(p))}")
    for p in plan.shared:
        print(f"    kept (another model of the store uses it): {shown(str(p))}")


def cmd_stores_adopt(args: argparse.Namespace) -> int:
    store = stores.find_store(args.store)
    model = stores.find_model(store, args.model)
    into = args.into or stores.default_name(model)
    if args.dry_run:
        plan = stores.removal_preview(store, model)
        if args.json:
            print_json({"into": into, "files": len(model.files),
                        "file_paths": [str(f.path) for f in model.files],
                        "size": model.size, "remove": [str(p) for p in plan.paths]
                        if args.remove_original else [], "freed": plan.bytes
                        if args.remove_original else 0})  # fmt: skip
            return EXIT_OK
        print(f"Would import {plural(len(model.files), 'file')} ({human_bytes(model.size)}) "
              + shown(f"from {store.title} {model.ref} as the next version of {into}"))  # fmt: skip
        if args.remove_original:
            _print_removal(store, plan, dry=True)
        return EXIT_OK
    ws = workspace(args)
    with ProgressLine("adopting", enabled=not args.json) as ctx:
        result = stores.adopt(ws, store, model, into, remove_original=args.remove_original,
                              ctx=ctx)  # fmt: skip
    ref = result.imported.manifest.ref
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    adopted = shown(f"Adopted {store.title} {model.ref} as {ref}")
    print(f"{adopted}: {plural(result.verified, 'file')} read back and identical to the originals")
    if args.remove_original:
        print(f"Removed {plural(len(result.removed), 'path')}, freed "
              f"{human_bytes(result.freed)}")  # fmt: skip
        for p in result.kept_shared:
            print(f"    kept (another model of the store uses it): {shown(str(p))}")
    else:
        print("The originals are untouched (--remove-original frees them after this check).")
    return EXIT_OK


def cmd_stores_delete(args: argparse.Namespace) -> int:
    store = stores.find_store(args.store)
    models = store.models()
    model = stores.find_model(store, args.model, models)
    plan = stores.removal_preview(store, model, models)
    if args.dry_run:
        if args.json:
            print_json({"remove": [str(p) for p in plan.paths], "freed": plan.bytes,
                        "kept_shared": [str(p) for p in plan.shared]})  # fmt: skip
        else:
            _print_removal(store, plan, dry=True)
        return EXIT_OK
    result = stores.delete_model(store, model, models)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    paths = plural(len(result.removed), "path")
    print(shown(f"Deleted {model.ref} from {store.title}: ") +
          f"{paths}, freed {human_bytes(result.freed)}")  # fmt: skip
    for p in result.kept_shared:
        print(f"    kept (another model of the store uses it): {shown(str(p))}")
    return EXIT_OK


def add_parsers(group: Any, action: Any) -> None:
    """The ``stores`` actions, under the command group ``group``."""
    s = action(group, "ls", cmd_stores_ls, "list the stores found and their models")
    s.add_argument("--tensors", action="store_true",
                   help="with --json: each weight file's tensors, from its header")  # fmt: skip
    s = action(group, "show", cmd_stores_show, "a store model's files and tensor index")
    s.add_argument("store", help="store name (e.g. 'Hugging Face cache', ollama) or folder")
    s.add_argument("model", help="MODEL or MODEL@REVISION")
    s = action(group, "add", cmd_stores_add, "list another folder of models")
    s.add_argument("path")
    s.add_argument("--kind", default="folder", choices=("folder", "huggingface", "ollama",
                                                         "lmstudio"))  # fmt: skip
    s.add_argument("--name", help="what to call it (default: its kind)")
    s = action(group, "rm", cmd_stores_rm, "stop listing a folder you added (files stay)")
    s.add_argument("which", help="its name or folder")
    action(group, "dups", cmd_stores_dups, "files stored more than once, across the stores "
           "and this repository, and the bytes that keeping one copy frees")  # fmt: skip
    s = action(group, "adopt", cmd_stores_adopt, "import a store's model into the repository "
               "and check it byte for byte; originals stay unless --remove-original")  # fmt: skip
    s.add_argument("store")
    s.add_argument("model", help="MODEL or MODEL@REVISION")
    s.add_argument("--into", help="repository model name (default: the store's model name)")
    s.add_argument("--remove-original", action="store_true",
                   help="after the check, delete the originals no other model uses")  # fmt: skip
    s.add_argument("--dry-run", action="store_true",
                   help="only say what would be imported and removed")  # fmt: skip
    s = action(group, "delete", cmd_stores_delete,
               "delete a store's model without adopting it (files another model uses stay); "
               "adopt --remove-original checks a copy first")  # fmt: skip
    s.add_argument("store")
    s.add_argument("model", help="MODEL or MODEL@REVISION")
    s.add_argument("--dry-run", action="store_true",
                   help="only say which paths would be deleted and the bytes freed")  # fmt: skip
