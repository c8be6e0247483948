"""Digests of every tensor's bytes, computed while a file is cut into chunks (one read)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelmanager.core.formats.base import TensorEntry
from modelmanager.core.ids import DIGEST_HEX_LEN, content_id, new_hasher


class TensorDigests:
    """Digests of every tensor's bytes, fed chunk by chunk in file order.

    A tensor that is exactly one chunk takes the chunk's id (the same hash of the same bytes),
    so only tensors that share or span chunks are hashed a second time.
    """

    EMPTY = content_id(b"")[:DIGEST_HEX_LEN]

    def __init__(self, tensors: Iterable[TensorEntry]) -> None:
        self.tensors = sorted(tensors, key=lambda t: (t.start, t.end))
        self.digests = [self.EMPTY if t.start == t.end else "" for t in self.tensors]
        self.pending = [i for i, t in enumerate(self.tensors) if t.start < t.end]
        self.next = 0
        self.open: dict[int, Any] = {}
        self.whole: dict[int, int] = {}  # tensor -> number of the chunk that is exactly it

    def feed(self, chunk_no: int, start: int, data: memoryview) -> None:
        """Hash the chunk ``chunk_no`` (at ``start`` in the file) into the tensors it covers."""
        end = start + len(data)
        while self.next < len(self.pending) and self.tensors[self.pending[self.next]].start < end:
            i = self.pending[self.next]
            self.next += 1
            t = self.tensors[i]
            if (t.start, t.end) == (start, end):
                self.whole[i] = chunk_no
            else:
                self.open[i] = new_hasher()
        for i in list(self.open):
            t = self.tensors[i]
            self.open[i].update(data[max(t.start, start) - start : min(t.end, end) - start])
            if t.end <= end:
                self.digests[i] = self.open.pop(i).hexdigest()[:DIGEST_HEX_LEN]

    def results(self, chunk_ids: list[str]) -> list[tuple[TensorEntry, str]]:
        """Every tensor with its digest, in file order, once every chunk was fed and stored."""
        for i, chunk_no in self.whole.items():
            self.digests[i] = chunk_ids[chunk_no][:DIGEST_HEX_LEN]
        return list(zip(self.tensors, self.digests, strict=True))
