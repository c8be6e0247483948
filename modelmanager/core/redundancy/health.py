"""The redundancy survey: every piece of every needed chunk checked against its chunk's policy.

It walks every readable device, verifies every piece of every chunk a version needs
(re-reading once before calling a piece corrupt), and compares what is good with what the
chunk's policy asks for. Scrub reports it (:func:`scrub_report`); repair and rebalance act on it.

:func:`iter_survey` streams it over a :class:`~.table.ChunkTable` (on disk): each
:class:`ChunkHealth` exists only while a bounded window of checks holds it, so scrub, which
keeps only findings, needs memory that does not grow with the chunks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from modelmanager.core.chunks.layout import Layout, Piece, fragment_key
from modelmanager.core.chunks.placed import PlacedChunkStore
from modelmanager.core.chunks.store import chunk_key, decode_object, hot_key, is_hot_key
from modelmanager.core.jobs import JobContext, default_workers, threaded
from modelmanager.core.placement import ONLINE, Device, rank
from modelmanager.core.redundancy import Policy, parse_fragment
from modelmanager.core.redundancy.table import ChunkTable, Needed
from modelmanager.core.repo.manifest import Manifest
from modelmanager.errors import IntegrityError, ModelManagerError

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ChunkHealth:
    """What the survey found for one chunk (filled in while surveying)."""

    chunk_id: str
    length: int
    policy: Policy
    models: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    good: list[Piece] = field(default_factory=list)
    corrupt: list[tuple[Piece, str]] = field(default_factory=list)
    transient: list[Piece] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (piece, expected device)

    def good_layout(self) -> Layout:
        layout = Layout()
        for p in self.good:
            if p.index is None:
                layout.copies.append(p.device)
            else:
                layout.fragments.setdefault((p.k, p.m), {}).setdefault(p.index, []).append(p.device)
        return layout

    @property
    def tolerance(self) -> int:
        return self.good_layout().tolerance()

    @property
    def under_replicated(self) -> bool:
        return self.tolerance < self.policy.tolerates

    @property
    def lost(self) -> bool:
        return self.tolerance < 0

    @property
    def healthy(self) -> bool:
        return not (self.missing or self.corrupt or self.under_replicated)


def needed_chunks(
    manifests: Iterable[Manifest], policy_for: Callable[[str], Policy]
) -> dict[str, ChunkHealth]:
    """Every chunk the versions need, with the policy it should have (``policy_for(model)``);
    a chunk shared by models gets the strongest of their policies."""
    needed: dict[str, ChunkHealth] = {}
    for m in manifests:
        policy = policy_for(m.model)
        for f in m.files:
            for c in f.chunks:
                h = needed.get(c.id)
                if h is None:
                    h = needed[c.id] = ChunkHealth(c.id, c.length, policy)
                elif policy.tolerates > h.policy.tolerates:
                    h.policy = policy
                h.models.add(m.model)
                h.refs.add(m.ref)
    return needed


def gather_pieces(chunks: PlacedChunkStore, needed: dict[str, ChunkHealth]) -> None:
    """Add every piece on a readable device to its chunk's ``good`` list, by presence only."""
    for d in chunks.readable_devices():
        for piece in chunks.iter_pieces(d):
            h = needed.get(piece.chunk_id)
            if h is not None:
                h.good.append(piece)


def check_piece(chunks: PlacedChunkStore, piece: Piece, length: int) -> str | None:
    """None when the piece is good, else why not."""
    store = chunks.stores[piece.device.id]
    source = f"{piece.device.name}:{piece.key}"
    try:
        blob = store.get(piece.key)
        if piece.index is None:
            decode_object(blob, piece.chunk_id, length, source)
        else:
            parse_fragment(blob, source)
    except (IntegrityError, OSError) as e:
        return e.message if isinstance(e, IntegrityError) else str(e)
    except ModelManagerError as e:
        return e.message
    return None


def expected_devices(chunks: PlacedChunkStore, chunk_id: str) -> list[Device]:
    """Where placement put (or would put) the chunk's pieces: online devices, mounted or not,
    in rendezvous rank spread over file systems as placement deals them (one per file system
    before a second on any), so a missing copy is named on the disk it belongs on.

    A device whose folder vanished was eligible when the pieces were written, so it is
    ranked too: that is how scrub names the device a missing piece belongs to.
    """
    return chunks.spread(rank(chunk_id, [d for d in chunks.devices.devices if d.state == ONLINE]))


def find_missing(chunks: PlacedChunkStore, h: ChunkHealth) -> None:
    """Fill ``h.missing``: each piece the policy asks for and no device holds, and where.

    A piece that is there but corrupt is not also missing: it is reported once, as corrupt
    (it used to be counted twice, "1 missing, 1 corrupt" for one flipped byte).
    """
    expected = expected_devices(chunks, h.chunk_id)
    layout = h.good_layout()
    p = h.policy
    damaged = [piece for piece, _why in h.corrupt if not is_hot_key(piece.key)]  # hot: extra
    if p.erasure:
        have = layout.fragments.get((p.k, p.m), {})
        used = {d.id for devs in have.values() for d in devs}
        held = set(have) | {x.index for x in damaged if x.index is not None}
        used |= {x.device.id for x in damaged if x.index is not None}
        gaps = [i for i in range(p.k + p.m) if i not in held]
        # Fragment i was written to the i-th expected device; name that one where it is free.
        named: dict[int, str] = {}
        for i in gaps:
            if i < len(expected) and expected[i].id not in used:
                named[i] = expected[i].name
                used.add(expected[i].id)
        spare = [d for d in expected if d.id not in used]
        for i in gaps:
            where = named.get(i) or (spare.pop(0).name if spare else "?")
            h.missing.append((f"fragment {i} of {p.k}+{p.m}", where))
    else:
        holders = {d.id for d in layout.copies} | {x.device.id for x in damaged if x.index is None}
        lacking = [d.name for d in expected if d.id not in holders]
        for n in range(p.copies - len(holders)):
            h.missing.append(("copy", lacking[n] if n < len(lacking) else "?"))


def _check(chunks: PlacedChunkStore, h: ChunkHealth) -> ChunkHealth:
    """Verify the pieces gathered for ``h`` (twice before condemning one), then find gaps."""
    candidates, h.good = h.good, []
    for piece in candidates:
        why = check_piece(chunks, piece, h.length)
        if why is not None:
            second = check_piece(chunks, piece, h.length)  # re-read before condemning
            if second is None:
                h.transient.append(piece)
            else:
                h.corrupt.append((piece, second))
                continue
        h.good.append(piece)
    check_hot_copies(chunks, h)
    find_missing(chunks, h)
    return h


def check_hot_copies(chunks: PlacedChunkStore, h: ChunkHealth) -> None:
    """Verify the chunk's hot copies (a pinned version's, services/pinning.py); a bad one
    (twice) joins ``h.corrupt``, so scrub reports it and repair deletes it. Hot copies are
    never added to ``h.good``: they do not count toward the policy."""
    for d in chunks.hot_devices():
        store = chunks.stores[d.id]
        if not store.path("hot").is_dir() or store.size(hot_key(h.chunk_id)) is None:
            continue
        why = chunks.check_hot(d, h.chunk_id, h.length)
        if why is not None and chunks.check_hot(d, h.chunk_id, h.length) is not None:
            key = hot_key(h.chunk_id)
            h.corrupt.append((Piece(h.chunk_id, d, key, store.size(key) or 0), why))


def survey(
    chunks: PlacedChunkStore, needed: dict[str, ChunkHealth], ctx: JobContext | None = None
) -> list[ChunkHealth]:
    """Check every piece of every needed chunk on every readable device (on a thread pool)."""
    ctx = ctx or JobContext()
    gather_pieces(chunks, needed)
    total = sum(h.length for h in needed.values())
    done = 0
    results = []
    with threaded(partial(_check, chunks), needed.values(), default_workers(), "mm-scrub",
                  ctx=ctx, ordered=True) as checked:  # fmt: skip
        for h, fut in checked:
            fut.result()
            done += h.length
            ctx.report(done, total, h.chunk_id[:12])
            results.append(h)
    return results


def in_window(fn: Callable[[T], R], items: Iterable[T], name: str, ctx: JobContext) -> Iterator[R]:
    """``fn(item)`` for each item on a thread pool, results in item order, with at most twice
    as many items taken from ``items`` as there are threads: a stream of any length is read as
    it goes (``threaded`` queues every item first)."""
    workers = default_workers()
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        try:
            for item in items:
                ctx.check()
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                ctx.check()
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


def iter_survey(
    chunks: PlacedChunkStore, table: ChunkTable, ctx: JobContext | None = None
) -> Iterator[ChunkHealth]:
    """:func:`survey` as a stream over a filled :class:`ChunkTable`: each chunk's record is
    made, checked (a bounded window of them at once on a thread pool) and yielded in chunk-id
    order; nothing is kept per chunk."""
    ctx = ctx or JobContext()
    _count, total = table.totals()
    done = 0

    def check(item: tuple[Needed, list[Piece]]) -> ChunkHealth:
        need, pieces = item
        h = ChunkHealth(need.chunk_id, need.length, need.policy,
                        {table.models[i] for i in need.users},
                        {table.refs[i] for i in need.users}, good=pieces)  # fmt: skip
        return _check(chunks, h)

    for h in in_window(check, table.pieces_of_needed(), "mm-scrub", ctx):
        done += h.length
        ctx.report(done, total, h.chunk_id[:12])
        yield h


def recheck(chunks: PlacedChunkStore, h: ChunkHealth) -> ChunkHealth:
    """Survey one chunk again (fresh piece list, every piece verified)."""
    fresh = ChunkHealth(h.chunk_id, h.length, h.policy, h.models, h.refs)
    layout = chunks.locate(h.chunk_id)
    candidates = [Piece(h.chunk_id, d, chunk_key(h.chunk_id), 0) for d in layout.copies]
    for (k, m), frags in layout.fragments.items():
        for i, devs in frags.items():
            key = fragment_key(k, m, h.chunk_id, i)
            candidates.extend(Piece(h.chunk_id, d, key, 0, i, k, m) for d in devs)
    for piece in candidates:
        why = check_piece(chunks, piece, h.length)
        if why is None:
            fresh.good.append(piece)
        else:
            fresh.corrupt.append((piece, why))
    find_missing(chunks, fresh)
    return fresh


# -- findings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingPiece:
    """A piece the chunk's policy asks for that no device holds, and the device it belongs on."""

    chunk: str
    piece: str  # "copy" or "fragment i of K+M"
    device: str
    models: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "piece": self.piece, "device": self.device,
                "models": list(self.models)}  # fmt: skip


@dataclass(frozen=True)
class CorruptPiece:
    """A stored piece that failed its check twice, and why."""

    chunk: str
    piece: str  # its key on the device
    device: str
    detail: str
    models: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "piece": self.piece, "device": self.device,
                "detail": self.detail, "models": list(self.models)}  # fmt: skip


@dataclass(frozen=True)
class TransientPiece:
    """A piece that failed its first check and passed the second (a flaky read)."""

    chunk: str
    piece: str
    device: str

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "piece": self.piece, "device": self.device}


@dataclass(frozen=True)
class UnderReplicated:
    """A chunk that survives fewer lost devices than its policy asks (-1: it is lost)."""

    chunk: str
    policy: str
    tolerates: int
    needs: int
    models: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "policy": self.policy, "tolerates": self.tolerates,
                "needs": self.needs, "models": list(self.models)}  # fmt: skip


@dataclass(frozen=True)
class LostChunk:
    """A chunk too few good pieces are left of to rebuild, and the versions that need it."""

    chunk: str
    versions: tuple[str, ...]
    models: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "versions": list(self.versions),
                "models": list(self.models)}  # fmt: skip


Finding = MissingPiece | CorruptPiece | UnderReplicated | LostChunk


@dataclass(frozen=True)
class ScrubReport:
    """Scrub findings, per piece and summed per device and per model."""

    chunks: int
    pieces: int
    missing: tuple[MissingPiece, ...]
    corrupt: tuple[CorruptPiece, ...]
    under_replicated: tuple[UnderReplicated, ...]
    lost: tuple[LostChunk, ...]
    transient: tuple[TransientPiece, ...]
    #: Metadata record copies that are missing, damaged, stale or left behind ("file: what").
    metadata: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.under_replicated or self.metadata)

    def by(self, field_name: str) -> dict[str, dict[str, int]]:
        """Counts of each finding kind per device (``"device"``) or per model (``"models"``)."""
        out: dict[str, dict[str, int]] = {}
        for kind in ("missing", "corrupt", "under_replicated", "lost"):
            item: Finding
            for item in getattr(self, kind):
                keys = getattr(item, field_name, ())
                for key in keys if isinstance(keys, tuple) else (keys,):
                    out.setdefault(key, {}).setdefault(kind, 0)
                    out[key][kind] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chunks": self.chunks,
            "pieces": self.pieces,
            "missing": [x.to_json() for x in self.missing],
            "corrupt": [x.to_json() for x in self.corrupt],
            "under_replicated": [x.to_json() for x in self.under_replicated],
            "lost": [x.to_json() for x in self.lost],
            "transient": [x.to_json() for x in self.transient],
            "metadata": list(self.metadata),
            "devices": self.by("device"),
            "models": self.by("models"),
        }


def scrub_report(health: Iterable[ChunkHealth]) -> ScrubReport:
    """The findings of a survey, one per missing, corrupt, flaky piece and weak or lost chunk."""
    missing: list[MissingPiece] = []
    corrupt: list[CorruptPiece] = []
    under: list[UnderReplicated] = []
    lost: list[LostChunk] = []
    transient: list[TransientPiece] = []
    chunks = pieces = 0
    for h in health:
        chunks += 1
        models = tuple(sorted(h.models))
        pieces += len(h.good) + len(h.corrupt)
        missing.extend(MissingPiece(h.chunk_id, what, device, models) for what, device in h.missing)
        corrupt.extend(CorruptPiece(h.chunk_id, piece.key, piece.device.name, why, models)
                       for piece, why in h.corrupt)  # fmt: skip
        transient.extend(TransientPiece(h.chunk_id, p.key, p.device.name) for p in h.transient)
        if h.under_replicated:
            under.append(UnderReplicated(h.chunk_id, str(h.policy), max(h.tolerance, -1),
                                         h.policy.tolerates, models))  # fmt: skip
        if h.lost:
            lost.append(LostChunk(h.chunk_id, tuple(sorted(h.refs)), models))
    return ScrubReport(chunks, pieces, tuple(missing), tuple(corrupt), tuple(under), tuple(lost),
                       tuple(transient))  # fmt: skip
