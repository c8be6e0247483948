"""Chunk planning: full coverage, tensor alignment, grouping, stability under edits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmanager.core.chunks.plan import fill_gaps, plan_chunks


def test_plan_covers_the_file_in_order_without_overlap() -> None:
    ranges = plan_chunks(1000, [(0, 100), (100, 900)], chunk_size=256, group_size=64)
    assert ranges[0] == (0, 100)
    assert ranges[1:] == [(100, 356), (356, 612), (612, 868), (868, 900), (900, 1000)]


def test_large_tensor_is_cut_from_its_own_start() -> None:
    # The same 600-byte tensor at two offsets yields pieces with the same lengths.
    a = plan_chunks(700, [(0, 100), (100, 700)], chunk_size=256, group_size=64)
    b = plan_chunks(900, [(0, 300), (300, 900)], chunk_size=256, group_size=64)
    assert [e - s for s, e in a[-3:]] == [e - s for s, e in b[-3:]] == [256, 256, 88]
    assert a[-3][0] == 100
    assert b[-3][0] == 300


def test_small_tensors_are_grouped_up_to_group_size() -> None:
    regions = [(i * 10, i * 10 + 10) for i in range(20)]  # twenty 10-byte tensors
    ranges = plan_chunks(200, regions, chunk_size=256, group_size=64)
    assert ranges == [(0, 70), (70, 140), (140, 200)]


def test_changing_one_tensor_changes_only_its_chunks() -> None:
    regions = [(0, 50), (50, 1050), (1050, 2050), (2050, 3050)]
    before = plan_chunks(3050, regions, chunk_size=256, group_size=64)
    # Same sizes, so the cut points cannot move: content changes touch only that tensor's chunks.
    assert before == plan_chunks(3050, list(regions), chunk_size=256, group_size=64)
    inside = [r for r in before if r[0] >= 1050 and r[1] <= 2050]
    assert sum(e - s for s, e in inside) == 1000


def test_empty_file_has_no_chunks() -> None:
    assert plan_chunks(0, [], chunk_size=256, group_size=64) == []


def test_overlapping_regions_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        fill_gaps(100, [(0, 60), (50, 100)])


@given(
    sizes=st.lists(st.integers(0, 3000), max_size=30),
    chunk=st.integers(1, 1024),
    group_frac=st.floats(0.01, 1.0),
    tail=st.integers(0, 500),
)
def test_plan_always_tiles_the_file(
    sizes: list[int], chunk: int, group_frac: float, tail: int
) -> None:
    regions, pos = [], 0
    for s in sizes:
        regions.append((pos, pos + s))
        pos += s
    size = pos + tail
    group = max(1, int(chunk * group_frac))
    ranges = plan_chunks(size, regions, chunk_size=chunk, group_size=group)
    assert all(0 < e - s <= chunk for s, e in ranges)
    flat = [p for r in ranges for p in r]
    assert flat == sorted(flat)
    assert (ranges[0][0] if ranges else 0) == 0
    assert (ranges[-1][1] if ranges else 0) == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    # Every region boundary of a large region is a cut point.
    cuts = {s for s, _e in ranges} | {size}
    for s, e in regions:
        if e - s >= group:
            assert s in cuts
            assert e in cuts
