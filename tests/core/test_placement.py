"""Weighted rendezvous placement: deterministic, proportional to weights, minimal movement."""

from __future__ import annotations

from modelmanager.core.ids import content_id
from modelmanager.core.placement import Device, rank, spread

IDS = [content_id(str(i).encode()) for i in range(10_000)]


def _devices(weights: list[float]) -> list[Device]:
    return [Device(f"id-{i}", f"d{i}", f"/d{i}", w) for i, w in enumerate(weights)]


def test_ranking_is_deterministic_and_independent_of_order() -> None:
    devs = _devices([1, 1, 1, 1])
    assert [d.name for d in rank(IDS[0], devs)] == [d.name for d in rank(IDS[0], devs[::-1])]


def test_weighted_placement_over_10000_chunks_matches_the_weights_within_10_percent() -> None:
    weights = [1.0, 2.0, 3.0, 4.0]
    counts = spread(IDS, _devices(weights))
    total = sum(weights)
    for i, w in enumerate(weights):
        expected = len(IDS) * w / total
        assert abs(counts[f"d{i}"] - expected) <= 0.10 * expected, (counts, expected)


def test_adding_a_seventh_device_moves_about_a_seventh() -> None:
    six = _devices([1] * 6)
    seven = _devices([1] * 7)
    for n in (1, 2, 6):  # copies=1, copies=2, ec=4+2
        before = {cid: {d.id for d in rank(cid, six)[:n]} for cid in IDS}
        after = {cid: {d.id for d in rank(cid, seven)[:n]} for cid in IDS}
        moved = sum(len(after[c] - before[c]) for c in IDS)
        ideal = len(IDS) * n / 7
        assert moved <= 1.3 * ideal, (n, moved, ideal)
        # Nothing moves between old devices: every move lands on the new one.
        assert all(after[c] - before[c] <= {"id-6"} for c in IDS)
