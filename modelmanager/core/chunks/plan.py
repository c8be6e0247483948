"""Where a file is cut into chunks.

Known formats give regions (a header, each tensor's bytes). Each large region is cut into
pieces of ``chunk_size`` starting at its own start, so an unchanged tensor yields the same
chunks wherever it sits in the file. Runs of small regions are grouped up to ``group_size`` so
a model of many tiny tensors (biases, norms) does not become thousands of tiny objects. The cut
points depend only on region sizes, so one changed tensor changes only its own chunks.
"""

from __future__ import annotations

from collections.abc import Iterable

Range = tuple[int, int]


def fill_gaps(size: int, regions: Iterable[Range]) -> list[Range]:
    """Sorted, non-empty ranges covering [0, size): the regions plus whatever lies between."""
    out: list[Range] = []
    pos = 0
    for start, end in sorted(regions):
        if start < pos or end > size:
            raise ValueError(f"region {start}-{end} overlaps or exceeds the file ({size} bytes)")
        if start > pos:
            out.append((pos, start))
        if end > start:
            out.append((start, end))
        pos = max(pos, end)
    if pos < size:
        out.append((pos, size))
    return out


def plan_chunks(
    size: int, regions: Iterable[Range], *, chunk_size: int, group_size: int
) -> list[Range]:
    """Chunk ranges covering [0, size) in order, none longer than ``chunk_size``.

    See the module docstring for the rules.
    """
    if not 0 < group_size <= chunk_size:
        raise ValueError("need 0 < group_size <= chunk_size")
    out: list[Range] = []
    group: Range | None = None
    for start, end in fill_gaps(size, regions):
        if end - start >= group_size:
            if group is not None:
                out.append(group)
                group = None
            out.extend((off, min(off + chunk_size, end)) for off in range(start, end, chunk_size))
            continue
        if group is not None and end - group[0] > chunk_size:
            out.append(group)  # never let a group outgrow a chunk (the importer's buffer size)
            group = None
        group = (group[0] if group else start, end)
        if group[1] - group[0] >= group_size:
            out.append(group)
            group = None
    if group is not None:
        out.append(group)
    return out
