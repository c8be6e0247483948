"""Re-encode the chunks of a version with another codec, safely and resumably.

A chunk's id is the hash of its plain bytes, so re-encoding never changes a manifest: only
the stored pieces change. For each chunk the target encoding is computed, then every stored
piece is made equal to it. Each new piece is written under a temporary name, read back and
verified, and only then renamed over the old one. An erasure-coded chunk first gets a whole
copy of the new object, so it stays readable while its fragments are replaced one by one;
that copy is removed at the end. An interrupted run leaves every chunk readable; running it
again finishes the job, because pieces already equal to the target are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from modelmanager.core.chunks.placed import Layout, PlacedChunkStore, fragment_key
from modelmanager.core.chunks.store import chunk_key, decode_object, encode_object
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.placement import Device
from modelmanager.core.redundancy import Policy, encode_fragments, parse_fragment
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.storage.atomic import REPLACE_SUFFIX
from modelmanager.errors import IntegrityError
from modelmanager.services import Changes, Workspace


@dataclass(frozen=True)
class RecompressReport:
    """What a recompress did: chunks seen, rewritten, and the stored bytes before and after."""

    ref: str
    codec: str
    chunks: int
    rewritten: int
    stored_before: int
    stored_after: int
    changes: Changes = field(default_factory=Changes)

    def to_json(self) -> dict[str, object]:
        return {
            "ref": self.ref, "codec": self.codec, "chunks": self.chunks,
            "rewritten": self.rewritten, "stored_before": self.stored_before,
            "stored_after": self.stored_after,
        }  # fmt: skip


def _replace_verified(
    chunks: PlacedChunkStore, device: Device, key: str, parts: list[BytesLike],
    check: object,
) -> None:  # fmt: skip
    """Write ``parts`` beside ``key``, verify what was written, then rename it over ``key``."""
    store = chunks.stores[device.id]
    tmp = key + REPLACE_SUFFIX
    store.put(tmp, parts, sync=False)
    blob = store.get(tmp)
    try:
        check(blob)  # type: ignore[operator]
    except IntegrityError:
        store.delete(tmp)
        raise
    os.replace(store.path(tmp), store.path(key))


def _same(chunks: PlacedChunkStore, device: Device, key: str, parts: list[BytesLike]) -> bool:
    try:
        return chunks.stores[device.id].get(key) == b"".join(bytes(p) for p in parts)
    except (OSError, IntegrityError):
        return False


def recompress(
    ws: Workspace,
    ref: str,
    settings: CodecSettings,
    *,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> RecompressReport:
    """Re-encode every chunk of the version ``ref`` names with ``settings``."""
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=ctx):  # the given one (None: the lane job's)
        ctx = ctx or JobContext()
        manifest = repo.resolve(ref)
        chunks = repo.chunks
        chunks.refresh()
        policy = repo.policy_for(manifest.model)
        work = _work([manifest])
        before = sum(chunks.stored_size(cid) or 0 for cid in work)
        total = sum(length for length, _hint in work.values())
        done = rewritten = 0
        try:
            for cid, (length, hint) in work.items():
                ctx.check()
                if _recompress_chunk(chunks, cid, length, hint, settings, policy):
                    rewritten += 1
                done += length
                ctx.report(done, total, cid[:12])
            chunks.flush()
        finally:  # pieces rewritten: the kept sizes on disk are measured again
            ws.catalog.forget_stored()
        after = sum(chunks.stored_size(cid) or 0 for cid in work)
    return RecompressReport(
        manifest.ref,
        settings.name,
        len(work),
        rewritten,
        before,
        after,
        Changes(frozenset({manifest.model}), storage=True),  # its stored size changed
    )


def _work(manifests: list[Manifest]) -> dict[str, tuple[int, str | None]]:
    """Every chunk the manifests use once: its plain length and the dtype hint of its bytes."""
    work: dict[str, tuple[int, str | None]] = {}
    for manifest in manifests:
        for f in manifest.files:
            hints = f.dtype_hints()
            pos = 0
            for c in f.chunks:
                work.setdefault(c.id, (c.length, hints.of(pos, pos + c.length)))
                pos += c.length
    return work


@dataclass(frozen=True)
class RecompressPreview:
    """What recompressing would store: the pieces each chunk has now, encoded with the codec."""

    refs: tuple[str, ...]
    codec: str
    chunks: int
    logical: int
    stored_before: int
    stored_after: int

    def to_json(self) -> dict[str, object]:
        return {
            "refs": list(self.refs), "codec": self.codec, "chunks": self.chunks,
            "logical": self.logical, "stored_before": self.stored_before,
            "stored_after": self.stored_after,
        }  # fmt: skip


def preview_recompress(
    ws: Workspace, refs: list[str], settings: CodecSettings, *, ctx: JobContext | None = None
) -> RecompressPreview:
    """Encode every chunk of ``refs`` with ``settings`` in memory (nothing is written) and sum
    what its present pieces would take: the exact stored size a recompress leaves."""
    ctx = ctx or JobContext()
    repo = ws.repo
    manifests = [repo.resolve(ref) for ref in refs]
    work = _work(manifests)
    chunks = repo.chunks
    chunks.refresh()
    total = sum(length for length, _hint in work.values())
    before = after = done = 0
    for cid, (length, hint) in work.items():
        ctx.check()
        layout = chunks.locate(cid)
        before += chunks.stored_size(cid) or 0
        _obj, data, _degraded = chunks.read_object(cid, length, layout)
        target = b"".join(bytes(p) for p in encode_object(data, settings, hint))
        after += len(layout.copies) * len(target)
        for (k, m), frags in layout.fragments.items():
            fragments = encode_fragments(target, k, m)
            after += sum(len(devs) * sum(len(p) for p in fragments[i]) for i, devs in frags.items())
        done += length
        ctx.report(done, total, cid[:12])
    return RecompressPreview(
        tuple(m.ref for m in manifests), settings.name, len(work), total, before, after
    )


def _recompress_chunk(
    chunks: PlacedChunkStore, cid: str, length: int, hint: str | None, settings: CodecSettings,
    policy: Policy,
) -> bool:  # fmt: skip
    """Make every piece of one chunk the target encoding; True when anything was rewritten."""
    layout = chunks.locate(cid)
    _obj, data, _degraded = chunks.read_object(cid, length, layout)
    target = b"".join(bytes(p) for p in encode_object(data, settings, hint))
    key = chunk_key(cid)

    def check_copy(blob: bytes) -> None:
        decode_object(blob, cid, length, key)

    changed = False
    for device in layout.copies:
        if not _same(chunks, device, key, [target]):
            _replace_verified(chunks, device, key, [target], check_copy)
            changed = True
    for (k, m), frags in layout.fragments.items():
        fragments = encode_fragments(target, k, m)
        stale = [
            (i, d) for i, devs in frags.items() for d in devs
            if not _same(chunks, d, fragment_key(k, m, cid, i), fragments[i])
        ]  # fmt: skip
        if not stale:
            continue
        # Keep the chunk readable while fragments change: a whole copy of the new object first.
        bridge = None
        if not layout.copies:
            targets = chunks.placement(cid, len(target))
            if not targets:
                raise IntegrityError("no device can hold a temporary copy", path=key)
            bridge = targets[0]
            _replace_verified(chunks, bridge, key, [target], check_copy)
        for i, device in stale:
            fkey = fragment_key(k, m, cid, i)
            _replace_verified(
                chunks, device, fkey, fragments[i],
                lambda blob, fkey=fkey: parse_fragment(blob, fkey),
            )  # fmt: skip
        chunks.flush()
        if bridge is not None:
            chunks.stores[bridge.id].delete(key)
        changed = True
    if policy.erasure and layout.copies and layout.fragments:
        # Copies an erasure-coded chunk does not want (a bridge left by an interrupted run)
        # go only once the fragments alone are proven to decode to the chunk.
        fragments_only = Layout(fragments=chunks.locate(cid).fragments)
        try:
            chunks.read_object(cid, length, fragments_only)
        except IntegrityError:
            return changed
        for device in layout.copies:
            chunks.stores[device.id].delete(key)
        changed = True
    return changed
