"""Benchmark history kept in the catalog: what a run measured, and what the fastest device and
replica-selection strategy were (it is in no manifest, so a rebuild keeps it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Benchmark kinds: raw reads of one device's pieces; a whole load (default settings); a load
#: with a given thread count; a load with a given replica-selection strategy.
BENCH_KINDS = ("device", "load", "threads", "strategy")


@dataclass(frozen=True)
class BenchRow:
    """One measurement of a benchmark run (see BENCH_KINDS); ``cache`` is cold or warm."""

    run: str
    at: str
    kind: str
    device: str = ""
    device_id: str = ""
    ref: str = ""
    strategy: str = ""
    threads: int = 0
    cache: str = "warm"
    bytes: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Bytes per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """``bench --json``: every field, and the throughput in bytes per second."""
        return {**asdict(self), "bytes_per_second": round(self.throughput)}


def device_speeds(rows: list[BenchRow]) -> dict[str, float]:
    """Newest measured raw read throughput per device id (bytes/s), cold preferred; ``rows``
    oldest first."""
    newest: dict[str, BenchRow] = {}
    for r in rows:  # oldest first: a later row of the same kind replaces
        if r.kind != "device" or r.throughput <= 0:
            continue
        have = newest.get(r.device_id)
        if have is None or (r.cache == "cold") >= (have.cache == "cold"):
            newest[r.device_id] = r
    return {k: r.throughput for k, r in newest.items()}


def best_strategy(rows: list[BenchRow]) -> str | None:
    """The replica-selection strategy that loaded fastest in the newest run that compared
    strategies (``rows`` oldest first); None when no run has."""
    compared = [r for r in rows if r.kind == "strategy" and r.seconds > 0]
    if not compared:
        return None
    newest = [r for r in compared if r.run == compared[-1].run]
    return max(newest, key=lambda r: r.throughput).strategy
