"""The load benchmark: how fast each device reads, and how fast a version loads, per setting.

One run measures, on the version it is given:
- per device, the raw read throughput of the version's pieces on it, cold (page cache emptied
  first, where the platform can) and warm;
- the end-to-end load into memory, cold and warm, with the default settings;
- a warm load per thread count (decode threads and readers per device), to find where more
  threads stop paying;
- a cold load per replica-selection strategy (strategies only change which disk is read).
Every measurement is stored in the catalog under one run id, so history accumulates and the
loader can pick the best strategy and weigh devices by what was measured.

Composition: the loads it times are :func:`services.loading.load_version` itself (and
``evict_version`` for cold ones), so a benchmark measures exactly what a user's load does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from modelmanager.core.catalog import BenchRow
from modelmanager.core.chunks.selection import STRATEGIES
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.storage import page_cache
from modelmanager.errors import UserError
from modelmanager.services import Workspace
from modelmanager.services.loading import evict_version, load_version

THREADS: tuple[int, ...] = (1, 2, 4, 8)
#: Raw reads per device stop after this many bytes (a sample is enough for a throughput).
DEVICE_SAMPLE_BYTES = 512 << 20


@dataclass
class BenchReport:
    """The measurements of one run, as stored in the catalog."""

    run: str
    ref: str
    cold_supported: bool
    rows: list[BenchRow] = field(default_factory=list)

    def of(self, kind: str) -> list[BenchRow]:
        return [r for r in self.rows if r.kind == kind]


def newest_ref(ws: Workspace) -> str:
    """The most recently created version of the repository (what ``bench`` measures by default)."""
    models = ws.catalog.models()
    if not models:
        raise UserError("nothing to benchmark: the repository has no versions yet")
    newest = max(models, key=lambda m: m.updated)
    return f"{newest.name}@{newest.latest}"


def _device_samples(ws: Workspace, manifest: Manifest) -> dict[str, tuple[Device, list[Path]]]:
    """Per device id: the device and the files of this version's pieces on it (capped)."""
    out: dict[str, tuple[Device, list[Path]]] = {}
    taken: dict[str, int] = {}
    for cid in dict.fromkeys(c.id for f in manifest.files for c in f.chunks):
        for device, path in ws.repo.chunks.piece_files(cid):
            if taken.get(device.id, 0) >= DEVICE_SAMPLE_BYTES:
                continue
            try:
                taken[device.id] = taken.get(device.id, 0) + path.stat().st_size
            except OSError:
                continue
            out.setdefault(device.id, (device, []))[1].append(path)
    return out


def run_benchmark(
    ws: Workspace, ref: str | None = None, *, threads: Sequence[int] = THREADS,
    strategies: Sequence[str] = STRATEGIES, ctx: JobContext | None = None, store: bool = True,
) -> BenchReport:  # fmt: skip
    """Measure (see the module text), store the rows in the catalog and return them."""
    ctx = ctx or JobContext()
    ref = ref or newest_ref(ws)
    manifest = ws.repo.resolve(ref)
    run = uuid.uuid4().hex[:12]
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = BenchReport(run, manifest.ref, page_cache.SUPPORTED)
    samples = _device_samples(ws, manifest)
    steps = 2 * len(samples) + 2 + len(threads) + len(strategies)
    step = [0]
    ctx.unit = "step"

    def record(row: BenchRow) -> None:
        report.rows.append(row)
        step[0] += 1
        ctx.report(step[0], steps, f"{row.kind} {row.device or row.strategy or row.threads}")

    buf = bytearray(1 << 20)
    for device, paths in samples.values():
        for cache in ("cold", "warm"):
            ctx.check()
            if cache == "cold" and not all([page_cache.evict(p) for p in paths]):
                step[0] += 1
                continue  # a "cold" read that is not would mislead: leave it out
            start = time.perf_counter()
            nbytes = sum(page_cache.read_through(p, buf) for p in paths)
            seconds = time.perf_counter() - start
            record(BenchRow(run, at, "device", device.name, device.id, manifest.ref, "", 1,
                            cache, nbytes, seconds))  # fmt: skip

    def load(kind: str, cold: bool, threads: int = 0, strategy: str = "") -> None:
        ctx.check()
        if cold:
            evict_version(ws, manifest)
        inner = JobContext(cancel_event=ctx.cancel_event)  # progress is per measurement here
        result = load_version(ws, manifest.ref, strategy=strategy or None,
                              threads=threads or None, ctx=inner)  # fmt: skip
        cache = "cold" if cold and report.cold_supported else "warm"
        record(BenchRow(run, at, kind, "", "", manifest.ref, strategy, threads, cache,
                        result.bytes, result.seconds))  # fmt: skip

    # An untimed load first: thread pools, the allocator and codec tables warm up, so the first
    # measured load is not slower for reasons that have nothing to do with the devices.
    load_version(ws, manifest.ref, ctx=JobContext(cancel_event=ctx.cancel_event))
    load("load", cold=True)
    load("load", cold=False)
    for n in threads:
        load("threads", cold=False, threads=n)
    for name in strategies:
        load("strategy", cold=True, strategy=name)
    if store:
        ws.catalog.add_bench(report.rows)
    return report
