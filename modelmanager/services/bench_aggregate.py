"""The aggregate figure of a ``bench`` run: how much the devices gave at once in a cold load.

A cold load reads every device holding pieces of the version at the same time, each through its
own queue (core/chunks/fetch.py). ``bench`` measures each device alone (its raw cold read) and
the cold load as a whole; the aggregate puts them side by side in stored bytes (what the devices
really read: whole copies, or K data fragments of each erasure-coded chunk):

    aggregate: 3 devices read at once, 118 MB/s of pieces (2.9x the fastest alone, 96 % of
    their sum)

Below 1x the fastest device, the load is bound by something else than the devices (decoding on
too few cores, or one device holding most of the version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmanager.core.catalog import BenchRow
from modelmanager.core.chunks.layout import fragment_key
from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.repo.manifest import Manifest
from modelmanager.services import Workspace


@dataclass(frozen=True)
class Aggregate:
    """A cold load's read rate across devices against each device's own cold read rate."""

    ref: str
    stored_bytes: int  # bytes of pieces one load reads
    seconds: float  # the cold load's time
    devices: dict[str, float]  # device name -> its raw cold read rate (bytes/s)

    @property
    def rate(self) -> float:
        """Bytes of pieces per second the cold load read from all devices together."""
        return self.stored_bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def fastest(self) -> float:
        return max(self.devices.values(), default=0.0)

    @property
    def gain(self) -> float:
        """The aggregate rate over the fastest device's alone (above 1: devices in parallel)."""
        return self.rate / self.fastest if self.fastest > 0 else 0.0

    @property
    def share(self) -> float:
        """The aggregate rate over the sum of every device's rate alone (1: none idle)."""
        total = sum(self.devices.values())
        return self.rate / total if total > 0 else 0.0

    def text(self) -> str:
        n = len(self.devices)
        return (f"aggregate: {n} device{'s' if n != 1 else ''} read at once, "
                f"{self.rate / 1e6:.0f} MB/s of pieces ({self.gain:.1f}x the fastest alone, "
                f"{self.share:.0%} of their sum)")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"version": self.ref, "stored_bytes": self.stored_bytes, "seconds": self.seconds,
                "bytes_per_second": round(self.rate),
                "devices": {k: round(v) for k, v in sorted(self.devices.items())},
                "gain": round(self.gain, 3), "share": round(self.share, 3)}  # fmt: skip


def stored_read_bytes(ws: Workspace, manifest: Manifest) -> int:
    """Bytes of pieces a load of ``manifest`` reads: a whole copy of each chunk, or its K data
    fragments (hot copies aside)."""
    chunks = ws.repo.chunks
    total = 0
    for cid in manifest.chunk_ids():
        layout = chunks.locate(cid)
        if layout.copies:
            total += chunks.stores[layout.copies[0].id].size(chunk_key(cid)) or 0
            continue
        for (k, m), frags in sorted(layout.fragments.items()):
            sizes = [chunks.stores[frags[i][0].id].size(fragment_key(k, m, cid, i))
                     for i in range(k) if frags.get(i)]  # fmt: skip
            total += sum(s or 0 for s in sizes)
            break
    return total


def aggregate(ws: Workspace, rows: list[BenchRow]) -> Aggregate | None:
    """The aggregate of one run's rows (its cold load and cold device reads); None when the run
    has no cold load or no cold device read (a platform that cannot empty the page cache)."""
    loads = [r for r in rows if r.kind == "load" and r.cache == "cold" and r.seconds > 0]
    devices = {r.device: r.throughput for r in rows if r.kind == "device" and r.cache == "cold"}
    if not loads or not devices:
        return None
    load = loads[-1]
    manifest = ws.repo.resolve(load.ref)
    return Aggregate(manifest.ref, stored_read_bytes(ws, manifest), load.seconds, devices)
