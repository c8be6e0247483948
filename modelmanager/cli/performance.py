"""How fast versions load: ``load``, ``warm`` and ``bench``."""

from __future__ import annotations

import argparse

from modelmanager.cli.common import STRATEGY_HELP, Commands, when, workspace
from modelmanager.cli.output import (
    ProgressLine,
    human_bytes,
    plural,
    print_json,
    print_table,
    shown,
)
from modelmanager.core.catalog import BenchRow
from modelmanager.core.chunks.selection import STRATEGIES
from modelmanager.errors import EXIT_OK, UserError
from modelmanager.services.bench_aggregate import aggregate
from modelmanager.services.benchmark import run_benchmark
from modelmanager.services.loading import load_version, warm
from modelmanager.services.pin_records import note_use


def cmd_load(args: argparse.Namespace) -> int:
    ws = workspace(args)
    with ProgressLine("loading", enabled=not args.json) as ctx:
        r = load_version(ws, args.ref, strategy=args.strategy, threads=args.threads,
                         cold=args.cold, ctx=ctx)  # fmt: skip
    note_use(ws.repo, r.manifest.model, r.manifest.seq)  # the hot tier's least recently used
    if args.json:
        print_json(r.to_json())
    else:
        tensors = len(r.arrays())
        spread = ", ".join(f"{k} {human_bytes(v)}" for k, v in sorted(r.device_bytes.items()))
        print(f"Loaded {shown(r.manifest.ref)}: {human_bytes(r.bytes)} in {r.seconds:.2f} s "
              f"({human_bytes(r.throughput)}/s), {plural(tensors, 'tensor')}; "
              f"read from {spread or 'no device'}")  # fmt: skip
    return EXIT_OK


def cmd_warm(args: argparse.Namespace) -> int:
    with ProgressLine("warming", enabled=not args.json) as ctx:
        result = warm(workspace(args), args.ref, ctx=ctx)
    if args.json:
        print_json(result.to_json())
    else:
        print(f"{shown(result.manifest.ref)}: {human_bytes(result.bytes_read)} read into the "
              "page cache")  # fmt: skip
    return EXIT_OK


def _bench_table(rows: list[BenchRow]) -> None:
    print_table(
        ["WHEN", "KIND", "DEVICE", "STRATEGY", "THREADS", "CACHE", "BYTES", "MB/S"],
        [[when(r.at), r.kind, r.device or "-", r.strategy or "-", r.threads or "-", r.cache,
          human_bytes(r.bytes), f"{r.throughput / 1e6:.0f}"] for r in rows],
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
        print_json([r.to_json() for r in rows])
    else:
        _bench_table(rows)
        if not args.history and (total := aggregate(ws, rows)) is not None:
            print(total.text())
        if not args.history:
            print(f"\nStored in the catalog; loads now use strategy "
                  f"{ws.catalog.best_strategy()} (the fastest measured).")  # fmt: skip
    return EXIT_OK


def add_parsers(commands: Commands) -> None:
    """The commands that load and measure."""
    p = commands.add("load", cmd_load, "load a version into memory and report how fast it went")
    p.add_argument("ref")
    p.add_argument("--cold", action="store_true", help="empty the page cache of its chunks first")
    p.add_argument("--strategy", choices=STRATEGIES, help=STRATEGY_HELP)
    p.add_argument("--threads", type=int, help="decode threads and readers per device")

    p = commands.add("warm", cmd_warm, "keep a version warm: read its chunks into the page cache")
    p.add_argument("ref")

    p = commands.add("bench", cmd_bench, "measure device and load throughput; keep the results")
    p.add_argument("ref", nargs="?", help="the version to load (default: the newest)")
    p.add_argument("--threads", default="1,2,4,8", help="thread counts to try (default 1,2,4,8)")
    p.add_argument("--history", action="store_true", help="print stored results, measure nothing")
