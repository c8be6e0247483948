"""bench's aggregate figure: a cold load's rate of pieces read across devices, against each
device's own cold read, from a real benchmark run on three devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmanager.core.storage import page_cache
from modelmanager.services.bench_aggregate import aggregate, stored_read_bytes
from modelmanager.services.benchmark import run_benchmark
from tests.services.test_loading import _cluster


@pytest.mark.skipif(not page_cache.SUPPORTED, reason="cold reads need posix_fadvise")
def test_aggregate_of_a_run_over_three_devices(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=1", rows=256)
    report = run_benchmark(ws, "m", threads=(1,), strategies=(), store=False)
    agg = aggregate(ws, report.rows)
    assert agg is not None
    assert set(agg.devices) == {"d0", "d1", "d2"}  # main is offline: it holds nothing
    pieces = sum(p.size for d in ws.repo.devices.devices if d.name != "main"
                 for p in ws.repo.chunks.iter_pieces(d))  # fmt: skip
    assert agg.stored_bytes == pieces  # one copy of each chunk: every piece is read once
    [cold_load] = [r for r in report.rows if r.kind == "load" and r.cache == "cold"]
    assert agg.seconds == cold_load.seconds
    assert agg.rate == pytest.approx(pieces / cold_load.seconds)
    assert agg.gain == pytest.approx(agg.rate / max(agg.devices.values()))
    assert 0 < agg.share <= agg.gain
    assert agg.text().startswith("aggregate: 3 devices read at once, ")
    assert agg.to_json()["devices"].keys() == {"d0", "d1", "d2"}
    assert aggregate(ws, [r for r in report.rows if r.kind != "device"]) is None


def test_an_erasure_coded_load_reads_only_its_data_fragments(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "ec=2+1", rows=256)
    manifest = ws.repo.resolve("m")
    pieces = [p for d in ws.repo.devices.devices if d.name != "main"
              for p in ws.repo.chunks.iter_pieces(d)]  # fmt: skip
    data = sum(p.size for p in pieces if p.index is not None and p.index < 2)
    assert stored_read_bytes(ws, manifest) == data < sum(p.size for p in pieces)


def test_a_load_of_two_copies_reads_one(tmp_path: Path) -> None:
    ws = _cluster(tmp_path, "copies=2", rows=256)
    pieces = sum(p.size for d in ws.repo.devices.devices if d.name != "main"
                 for p in ws.repo.chunks.iter_pieces(d))  # fmt: skip
    assert stored_read_bytes(ws, ws.repo.resolve("m")) * 2 == pieces
