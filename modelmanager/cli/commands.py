"""One function per command: parse nothing, call a service, print the result (or JSON)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modelmanager import __version__, paths
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
from modelmanager.core.catalog import BenchRow, VersionRow
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.repo.manifest import Manifest, TensorRecord
from modelmanager.errors import EXIT_OK, EXIT_PROBLEMS, UserError
from modelmanager.services import (
    Workspace,
    devices,
    history,
    init_repository,
    open_workspace,
    redundancy,
    remotes,
)
from modelmanager.services.benchmark import run_benchmark
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.loading import load_version, warm_version
from modelmanager.services.maintenance import collect_garbage, reindex, stats, verify
from modelmanager.services.recompress import recompress
from modelmanager.services.redundancy import RepairReport


def workspace(args: argparse.Namespace) -> Workspace:
    """The repository named by --repo / MODELMANAGER_REPO, else the default (made on first use)."""
    return open_workspace(Path(args.repo) if args.repo else None)


def _version_json(v: VersionRow) -> dict[str, Any]:
    return {
        "model": v.model,
        "version": v.seq,
        "ref": f"{v.model}@{v.seq}",
        "parent": v.parent,
        "created": v.created,
        "message": v.message,
        "labels": list(v.labels),
        "metadata": v.metadata,
        "files": v.files,
        "tensors": v.tensors,
        "parameters": v.parameters,
        "logical_bytes": v.logical_bytes,
        "dtypes": v.dtypes,
    }


def _when(created: str) -> str:
    return created[:19].replace("T", " ")


def display_available() -> bool:
    """True where the desktop app can open a window (checked without importing Qt)."""
    import os

    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the desktop application (Qt is imported only here)."""
    try:
        from modelmanager.gui.app import run
    except ImportError as e:
        raise UserError(f"the desktop app needs PySide6 ({e})") from None
    screenshot = Path(args.screenshot) if args.screenshot else None
    files = [Path(f).absolute() for f in args.files]
    return run(Path(args.repo) if args.repo else None, screenshot, args.tab, files)


def cmd_status(args: argparse.Namespace) -> int:
    """One line about the repository in use: where it is and what it holds."""
    ws = workspace(args)
    models = history.list_models(ws)
    versions = sum(m.versions for m in models)
    size = human_bytes(sum(m.logical_bytes for m in models))
    print(
        f"ModelManager {__version__}: repository {ws.repo.root} holds "
        f"{plural(len(models), 'model')}, {plural(versions, 'version')} ({size} newest)\n"
    )
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.path or args.repo or paths.default_repo_path())
    ws = init_repository(
        root,
        chunk_size=args.chunk_size,
        group_size=min(args.group_size, args.chunk_size),
        codec=CodecSettings(args.codec, args.level),
    )
    if args.json:
        print_json({"repository": str(ws.repo.root), "id": ws.repo.config.id})
    else:
        print(f"Created an empty repository in {ws.repo.root}")
    return EXIT_OK


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
        print_json({
            "ref": m.ref, "model": m.model, "version": m.seq, "files": result.files,
            "logical_bytes": result.logical_bytes, "chunks": result.chunks,
            "new_chunks": result.new_chunks, "new_stored_bytes": result.new_stored_bytes,
        })  # fmt: skip
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
        print_json([
            {"model": r.name, "versions": r.versions, "latest": r.latest, "updated": r.updated,
             "logical_bytes": r.logical_bytes, "parameters": r.parameters, "labels": r.labels}
            for r in rows
        ])  # fmt: skip
        return EXIT_OK
    if not rows:
        print("No models yet. Import one with: modelmanager import PATH --model NAME")
        return EXIT_OK
    print_table(
        ["MODEL", "VERSIONS", "LATEST", "SIZE", "PARAMS", "LABELS", "UPDATED"],
        [
            [r.name, r.versions, r.latest, human_bytes(r.logical_bytes), human_count(r.parameters),
             ",".join(f"{k}@{v}" for k, v in sorted(r.labels.items())), _when(r.updated)]
            for r in rows
        ],
    )  # fmt: skip
    return EXIT_OK


def _print_versions(rows: list[VersionRow]) -> None:
    print_table(
        ["VERSION", "CREATED", "SIZE", "PARAMS", "LABELS", "MESSAGE"],
        [
            [v.seq, _when(v.created), human_bytes(v.logical_bytes), human_count(v.parameters),
             ",".join(v.labels), v.message]
            for v in rows
        ],
    )  # fmt: skip


def cmd_log(args: argparse.Namespace) -> int:
    rows = history.log(workspace(args), args.model)
    if args.json:
        print_json([_version_json(v) for v in rows])
    else:
        _print_versions(rows)
    return EXIT_OK


def _manifest_json(m: Manifest, labels: dict[str, int], tensors: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ref": m.ref, "model": m.model, "version": m.seq, "parent": m.parent,
        "created": m.created, "message": m.message,
        "labels": sorted(k for k, v in labels.items() if v == m.seq),
        "metadata": m.metadata, "logical_bytes": m.logical_bytes, "parameters": m.parameters,
        "dtypes": m.dtype_bytes(),
        "files": [
            {"path": f.path, "size": f.size, "format": f.format, "chunks": len(f.chunks),
             "tensors": len(f.tensors)}
            for f in m.files
        ],
    }  # fmt: skip
    if tensors:
        doc["tensors"] = [
            {"file": f.path, "name": t.name, "dtype": t.dtype, "shape": list(t.shape),
             "parameters": t.numel, "offsets": [t.start, t.end], "digest": t.digest}
            for f, t in m.tensors
        ]  # fmt: skip
    return doc


def cmd_show(args: argparse.Namespace) -> int:
    ws = workspace(args)
    m, labels = history.show(ws, args.ref)
    parent_removed = m.parent in set(ws.repo.removed_numbers(m.model)) - set(
        ws.repo.version_numbers(m.model)
    )
    if args.json:
        print_json({**_manifest_json(m, labels, args.tensors), "parent_removed": parent_removed})
        return EXIT_OK
    own = sorted(k for k, v in labels.items() if v == m.seq)
    print(shown(f"{m.ref}  {_when(m.created)}  {', '.join(own)}"))
    if m.message:
        print(f"  {shown(m.message)}")
    print(
        f"  size {human_bytes(m.logical_bytes)}, {human_count(m.parameters)} parameters, "
        f"parent {m.parent or '-'}{' (removed)' if parent_removed else ''}"
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
    if args.tensors:
        print()
        _tensor_table(m)
    return EXIT_OK


def _tensor_table(m: Manifest) -> None:
    print_table(
        ["TENSOR", "DTYPE", "SHAPE", "PARAMS", "BYTES", "FILE"],
        [[t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", t.numel, t.nbytes, f.path]
         for f, t in m.tensors],
    )  # fmt: skip


def cmd_export(args: argparse.Namespace) -> int:
    with ProgressLine("exporting", enabled=not args.json) as ctx:
        result = export_ref(workspace(args), args.ref, Path(args.dest), force=args.force, ctx=ctx,
                            strategy=args.strategy)  # fmt: skip
    if args.json:
        print_json(
            {
                "ref": result.manifest.ref,
                "dest": str(result.dest),
                "files": [str(p) for p in result.files],
                "bytes": result.bytes,
                "degraded_chunks": result.degraded_chunks,
            }
        )
    else:
        print(
            f"Exported {shown(result.manifest.ref)}: {len(result.files)} files, "
            f"{human_bytes(result.bytes)} to {shown(str(result.dest))}"
        )
        if result.degraded_chunks:
            print(
                f"  {result.degraded_chunks} chunks were read from redundancy (a piece was "
                "missing or corrupt); run 'modelmanager scrub', then 'repair'",
                file=sys.stderr,
            )
    return EXIT_OK


def cmd_load(args: argparse.Namespace) -> int:
    with ProgressLine("loading", enabled=not args.json) as ctx:
        r = load_version(workspace(args), args.ref, strategy=args.strategy, threads=args.threads,
                         cold=args.cold, ctx=ctx)  # fmt: skip
    tensors = len(r.arrays())
    doc = {"ref": r.manifest.ref, "bytes": r.bytes, "seconds": round(r.seconds, 4),
           "bytes_per_second": round(r.throughput), "device_bytes": r.device_bytes,
           "tensors": tensors, "degraded_chunks": r.degraded_chunks}  # fmt: skip
    if args.json:
        print_json(doc)
    else:
        spread = ", ".join(f"{k} {human_bytes(v)}" for k, v in sorted(r.device_bytes.items()))
        print(f"Loaded {shown(r.manifest.ref)}: {human_bytes(r.bytes)} in {r.seconds:.2f} s "
              f"({human_bytes(r.throughput)}/s), {plural(tensors, 'tensor')}; "
              f"read from {spread or 'no device'}")  # fmt: skip
    return EXIT_OK


def cmd_warm(args: argparse.Namespace) -> int:
    with ProgressLine("warming", enabled=not args.json) as ctx:
        n = warm_version(workspace(args), args.ref, ctx=ctx)
    if args.json:
        print_json({"ref": args.ref, "bytes_read": n})
    else:
        print(f"{shown(args.ref)}: {human_bytes(n)} read into the page cache")
    return EXIT_OK


def _bench_table(rows: list[BenchRow]) -> None:
    print_table(
        ["WHEN", "KIND", "DEVICE", "STRATEGY", "THREADS", "CACHE", "BYTES", "MB/S"],
        [[r.at[:19].replace("T", " "), r.kind, r.device or "-", r.strategy or "-",
          r.threads or "-", r.cache, human_bytes(r.bytes), f"{r.throughput / 1e6:.0f}"]
         for r in rows],
    )  # fmt: skip


def cmd_bench(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.history:
        rows = ws.catalog.bench_rows()
    else:
        try:
            threads = [int(x) for x in args.threads.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--threads takes numbers like 1,2,4,8, not {args.threads!r}") from None
        if any(n < 1 for n in threads):
            raise UserError("--threads: every count must be at least 1")
        with ProgressLine("benchmarking", enabled=not args.json) as ctx:
            report = run_benchmark(ws, args.ref, threads=threads, ctx=ctx)
        rows = report.rows
        if not report.cold_supported and not args.json:
            print("(this platform cannot empty the page cache: every figure is a warm one)")
    if args.json:
        print_json([{**r.__dict__, "bytes_per_second": round(r.throughput)} for r in rows])
    else:
        _bench_table(rows)
        if not args.history:
            print(f"\nStored in the catalog; loads now use strategy "
                  f"{ws.catalog.best_strategy()} (the fastest measured).")  # fmt: skip
    return EXIT_OK


def _tensor_type(t: TensorRecord | None) -> str:
    return f"{t.dtype}[{'x'.join(map(str, t.shape))}]" if t else "-"


def cmd_diff(args: argparse.Namespace) -> int:
    d = history.diff_refs(workspace(args), args.a, args.b)
    if args.json:
        print_json({
            "a": d.a, "b": d.b, "logical_delta": d.logical_delta,
            "unchanged_tensors": d.unchanged_tensors,
            "files": [{"path": f.path, "status": f.status, "old_size": f.old_size,
                       "new_size": f.new_size} for f in d.files],
            "tensors": [{"name": t.name, "status": t.status, "byte_delta": t.byte_delta,
                         "old": t.old and {"dtype": t.old.dtype, "shape": list(t.old.shape),
                                           "bytes": t.old.nbytes},
                         "new": t.new and {"dtype": t.new.dtype, "shape": list(t.new.shape),
                                           "bytes": t.new.nbytes}}
                        for t in d.tensors],
        })  # fmt: skip
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


def cmd_label(args: argparse.Namespace) -> int:
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
        print_json(
            {
                "model": result.model,
                "label": result.label,
                "version": result.seq,
                "previous": result.previous,
            }
        )
    else:
        print(shown(text))
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    rows = workspace(args).catalog.search(args.text)
    if args.json:
        print_json([_version_json(v) for v in rows])
    elif not rows:
        print(f"Nothing matches {args.text!r}")
    else:
        print_table(
            ["REF", "LABELS", "SIZE", "MESSAGE"],
            [[f"{v.model}@{v.seq}", ",".join(v.labels), human_bytes(v.logical_bytes), v.message]
             for v in rows],
        )  # fmt: skip
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    with ProgressLine("verifying", enabled=not args.json) as ctx:
        report = verify(workspace(args), args.ref, quick=args.quick, ctx=ctx)
    if args.json:
        print_json({
            "ok": report.ok, "versions": report.versions, "chunks": report.chunks,
            "bytes": report.bytes, "transient": list(report.transient),
            "problems": [{"kind": p.kind, "subject": p.subject, "detail": p.detail,
                          "versions": list(p.versions)} for p in report.problems],
        })  # fmt: skip
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
        print_json({
            "dry_run": args.dry_run, "chunks": len(plan.chunks), "temp_files": len(plan.temp_files),
            "bytes": plan.bytes, "deleted_chunks": result.deleted_chunks,
            "freed_bytes": result.freed_bytes,
            "unused_chunks": [{"chunk": c, "stored_bytes": n} for c, n in plan.chunks],
            "temp_file_paths": [str(p) for p, _n in plan.temp_files],
        })  # fmt: skip
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


def cmd_reindex(args: argparse.Namespace) -> int:
    ws = workspace(args)
    result = reindex(ws)
    if args.json:
        print_json({"versions": result.added, "catalog": str(ws.catalog.path)})
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


def cmd_device_add(args: argparse.Namespace) -> int:
    device, recognised = devices.add_device(
        workspace(args), Path(args.path), name=args.name, weight=args.weight, tier=args.tier,
        lock_timeout=args.wait,
    )  # fmt: skip
    if args.json:
        print_json({"name": device.name, "id": device.id, "path": device.path,
                    "recognised": recognised})  # fmt: skip
    elif recognised:
        print(f"Recognised device {device.name}: now at {device.path}")
    else:
        print(f"Added device {device.name} at {device.path} (weight {device.weight:g}, "
              f"{device.tier}); run 'rebalance' to spread existing data onto it")  # fmt: skip
    return EXIT_OK


def cmd_remote_add(args: argparse.Namespace) -> int:
    secret = None
    if args.access_key_id:
        if sys.stdin.isatty():
            import getpass

            secret = getpass.getpass(f"Secret access key for {args.access_key_id}: ")
        else:
            secret = sys.stdin.readline().strip()
    spec = remotes.add_remote(args.name, args.url, endpoint=args.endpoint, profile=args.profile,
                              access_key=args.access_key_id, secret_key=secret)  # fmt: skip
    if args.json:
        print_json({"name": spec.name, "url": spec.url, "endpoint": spec.endpoint,
                    "profile": spec.profile, "read_only": spec.read_only})  # fmt: skip
    else:
        keys = "; keys kept in the OS keyring" if args.access_key_id else ""
        print(f"Added remote {spec.name} at {spec.url}{keys}")
    return EXIT_OK


def cmd_remote_ls(args: argparse.Namespace) -> int:
    specs = remotes.list_remotes()
    if args.json:
        print_json([{"name": r.name, "url": r.url, "endpoint": r.endpoint, "profile": r.profile,
                     "read_only": r.read_only} for r in specs])  # fmt: skip
    elif specs:
        print_table(["REMOTE", "URL", "ENDPOINT", "PROFILE", "ACCESS"],
                    [[r.name, r.url, r.endpoint or "-", r.profile or "-",
                      "read-only" if r.read_only else "read-write"] for r in specs])  # fmt: skip
    else:
        print("No remotes. Add one: modelmanager remote add NAME s3://BUCKET/PREFIX")
    return EXIT_OK


def cmd_remote_rm(args: argparse.Namespace) -> int:
    spec = remotes.remove_remote(args.name)
    if args.json:
        print_json({"name": spec.name, "url": spec.url})
    else:
        print(f"Forgot remote {spec.name} ({spec.url}); nothing on it was touched")
    return EXIT_OK


def cmd_remote_show(args: argparse.Namespace) -> int:
    remote = remotes.open_remote(args.name)
    if args.ref:
        m = remote.resolve(args.ref)
        if args.json:
            print_json(m.to_json())
        else:
            print(shown(f"{args.name}:{m.ref}  {m.created[:19].replace('T', ' ')}  {m.message}"))
            print_table(["FILE", "SIZE", "FORMAT", "TENSORS", "CHUNKS"],
                        [[f.path, f.size, f.format, len(f.tensors), len(f.chunks)]
                         for f in m.files])  # fmt: skip
            if args.tensors:
                print()
                _tensor_table(m)
        return EXIT_OK
    versions = remotes.list_versions(remote)
    if args.json:
        print_json([{"model": v.model, "seq": v.seq, "created": v.created, "message": v.message,
                     "labels": list(v.labels), "logical_bytes": v.logical_bytes}
                    for v in versions])  # fmt: skip
    else:
        print_table(["MODEL", "VERSION", "CREATED", "LABELS", "SIZE", "MESSAGE"],
                    [[v.model, f"@{v.seq}", v.created[:19].replace("T", " "),
                      ", ".join(v.labels) or "-", human_bytes(v.logical_bytes), v.message]
                     for v in versions])  # fmt: skip
    return EXIT_OK


def _transfer_report(args: argparse.Namespace, verb: str, r: remotes.TransferResult) -> None:
    if args.json:
        print_json({"ref": r.ref, "chunks_sent": r.chunks_sent, "bytes_sent": r.bytes_sent,
                    "chunks_skipped": r.chunks_skipped,
                    "manifest_written": r.manifest_written})  # fmt: skip
    else:
        state = "" if r.manifest_written else " (it was there already)"
        print(f"{verb} {shown(r.ref)}{state}: {plural(r.chunks_sent, 'chunk')} "
              f"({human_bytes(r.bytes_sent)}) moved, {r.chunks_skipped} already there")  # fmt: skip


def cmd_push(args: argparse.Namespace) -> int:
    remote = remotes.open_remote(args.remote)
    with ProgressLine("pushing", enabled=not args.json) as ctx:
        result = remotes.push(workspace(args), args.ref, remote, ctx=ctx)
    _transfer_report(args, "Pushed", result)
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    remote = remotes.open_remote(args.remote)
    with ProgressLine("pulling", enabled=not args.json) as ctx:
        result = remotes.pull(workspace(args), remote, args.ref, ctx=ctx, lock_timeout=args.wait)
    _transfer_report(args, "Pulled", result)
    return EXIT_OK


def cmd_device_ls(args: argparse.Namespace) -> int:
    infos = devices.list_devices(workspace(args))
    if args.json:
        print_json([
            {"name": i.device.name, "id": i.device.id, "path": str(i.root),
             "weight": i.device.weight, "tier": i.device.tier, "state": i.status,
             "capacity": i.capacity, "free": i.free, "used": i.used, "pieces": i.pieces,
             "chunks": i.chunks}
            for i in infos
        ])  # fmt: skip
        return EXIT_OK
    print_table(
        ["DEVICE", "STATE", "TIER", "WEIGHT", "USED", "FREE", "CAPACITY", "CHUNKS", "PATH"],
        [[i.device.name, i.status, i.device.tier, f"{i.device.weight:g}", human_bytes(i.used),
          human_bytes(i.free) if i.free is not None else "-",
          human_bytes(i.capacity) if i.capacity is not None else "-", i.chunks, str(i.root)]
         for i in infos],
    )  # fmt: skip
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


def cmd_device_rm(args: argparse.Namespace) -> int:
    if args.dry_run:
        if not args.drain:
            raise UserError("--dry-run goes with --drain (--force moves nothing to preview)")
        plan = redundancy.preview_moves(workspace(args), draining=args.name)
        return _print_plan(args, plan, f"Draining {args.name}")
    with ProgressLine("draining", enabled=not args.json) as ctx:
        result = devices.remove_device(
            workspace(args), args.name, drain=args.drain, force=args.force,
            ctx=ctx, lock_timeout=args.wait,
        )  # fmt: skip
    if args.json:
        print_json({"removed": result.device.name, "moved_pieces": result.drained_pieces,
                    "moved_bytes": result.drained_bytes})  # fmt: skip
    elif args.drain:
        print(f"Moved {result.drained_pieces} pieces ({human_bytes(result.drained_bytes)}) off "
              f"{result.device.name} and removed it")  # fmt: skip
    else:
        print(f"Forgot device {result.device.name}; its pieces count as missing until you run "
              "'repair'")  # fmt: skip
    return EXIT_OK


def cmd_device_set(args: argparse.Namespace) -> int:
    state = {"offline": "offline", "online": "online"}.get(args.device_command)
    device = devices.set_device(
        workspace(args), args.name, state=state, weight=getattr(args, "weight", None),
        tier=getattr(args, "tier", None), lock_timeout=args.wait,
    )  # fmt: skip
    if args.json:
        print_json({"name": device.name, "state": device.state, "weight": device.weight,
                    "tier": device.tier})  # fmt: skip
    else:
        print(f"Device {device.name}: {device.state}, weight {device.weight:g}, {device.tier}")
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
        plan = devices.preview_policy(ws, text, model)
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
        problem = ws.repo.chunks.room_problem(plan.write_bytes, f"converting to {plan.policy}")
        if problem is not None:
            print(f"It would be refused: {problem}.", file=sys.stderr)
        print("Nothing was changed (dry run).")
        return EXIT_OK
    with ProgressLine("converting", enabled=not args.json) as ctx:
        policy, report = devices.set_policy(ws, text, model, ctx=ctx,
                                            lock_timeout=args.wait)  # fmt: skip
    if args.json:
        print_json({"policy": str(policy), "model": model, **report.to_json()})
    else:
        print(
            f"Policy of {model or 'the repository'} is now {policy}: converted "
            f"{report.repaired_chunks} chunks ({human_bytes(report.written_bytes)} written)"
        )
        _print_repair_problems(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _print_repair_problems(report: RepairReport) -> None:
    for device, why in sorted(report.device_problems.items()):
        print(f"  device {device} took no new pieces: {why}", file=sys.stderr)
    for item in report.lost:
        print(f"  lost: chunk {item['chunk']} (affects {shown(', '.join(item['versions']))})",
              file=sys.stderr)  # fmt: skip
    for item in report.failed:
        print(f"  not repaired: chunk {item['chunk']}: {shown(item['reason'])}", file=sys.stderr)


def cmd_scrub(args: argparse.Namespace) -> int:
    with ProgressLine("scrubbing", enabled=not args.json) as ctx:
        report = redundancy.scrub(workspace(args), ctx=ctx)
    if args.json:
        print_json(report.to_json())
        return EXIT_OK if report.ok else EXIT_PROBLEMS
    found = (
        f"{len(report.missing)} missing, {len(report.corrupt)} corrupt, "
        f"{len(report.under_replicated)} under-replicated, {len(report.lost)} lost"
    )
    print(f"scrub: {report.chunks} chunks, {report.pieces} pieces: "
          f"{'all good' if report.ok else found}")  # fmt: skip
    for device, counts in sorted(report.by("device").items()):
        print(f"  device {device}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for model, counts in sorted(report.by("models").items()):
        print(f"  model {shown(model)}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
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
            print(f"  not moved: {item['piece']} ({item['device']}): {item['reason']}",
                  file=sys.stderr)  # fmt: skip
    return EXIT_OK if not report.failed else EXIT_PROBLEMS


def cmd_codec(args: argparse.Namespace) -> int:
    ws = workspace(args)
    if args.codec_command == "show":
        current = {k: f"{v.name}:{v.level}" for k, v in ws.repo.policies.codecs.items()}
        base = ws.repo.codec_for("-")
        if args.json:
            print_json({"default": f"{base.name}:{base.level}", "overrides": current})
        else:
            print(f"repository: {base.name} (level {base.level})")
            for name, value in sorted(current.items()):
                if name != "*":
                    print(f"{shown(name)}: {value}")
        return EXIT_OK
    model, name = _model_and_value(args.words, "codec set [MODEL] CODEC")
    settings = devices.set_codec(ws, CodecSettings(name, args.level), model,
                                 lock_timeout=args.wait)  # fmt: skip
    if args.json:
        print_json({"model": model, "codec": settings.name, "level": settings.level})
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
