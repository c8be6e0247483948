"""Write a version's files back out, byte for byte, under a destination folder.

Chunks are fetched, decoded and verified against their ids on a thread pool while this thread
writes them in order; a bounded window keeps memory flat. Each file is written to a temporary
name, synced, and renamed, so a destination never holds a half-written file under its name.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path

from modelmanager.core.chunks.placed import DevicePools
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import FileRecord, Manifest
from modelmanager.core.storage.atomic import fsync_dir, fsync_fd, temp_path_for
from modelmanager.errors import UserError
from modelmanager.services import Workspace
from modelmanager.services.importing import default_workers

#: Chunk reads in flight (bounds memory: about 16 x 4 MiB chunks plus their decoded bytes;
#: each device gets at least 2, so a repository of many devices may have a few more).
MAX_IN_FLIGHT = 16


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    manifest: Manifest
    dest: Path
    files: tuple[Path, ...]
    bytes: int
    degraded_chunks: int = 0


def _targets(manifest: Manifest, dest: Path, force: bool) -> list[tuple[FileRecord, Path]]:
    base = dest.resolve()
    out = []
    for f in manifest.files:
        target = dest.joinpath(*f.path.split("/"))
        # Manifest paths are validated on load; also refuse links that lead out of dest.
        if not target.parent.resolve().is_relative_to(base):
            raise UserError("refusing to write outside the destination", path=target)
        if target.is_dir():
            raise UserError("a folder is in the way of this file", path=target)
        if target.exists() and not force:
            raise UserError("file exists; use --force to overwrite it", path=target)
        out.append((f, target))
    return out


_seek_lock = threading.Lock()


def pwrite_all(fd: int, data: BytesLike, offset: int) -> None:
    """Write all of ``data`` at ``offset`` without moving a shared file position."""
    view = memoryview(data)
    if not hasattr(os, "pwrite"):  # Windows: seek and write under one lock
        with _seek_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            while view:
                view = view[os.write(fd, view) :]
        return
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _write_file(
    ws: Workspace, model: str, f: FileRecord, target: Path, pools: DevicePools,
    ctx: JobContext, done: list[int], total: int,
) -> None:  # fmt: skip
    """Each chunk is fetched, verified and written at its offset by its device's pool.

    The window of reads in flight is refilled from whichever read finishes first, so a slow
    device delays only its own chunks, not the ones queued behind them.
    """
    chunks = ws.repo.chunks
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    # Chunks are written at their offsets, so they may arrive in any order: queue them per
    # device and keep each device's reads in flight up to its own share of the limit.
    queues: dict[str, deque[tuple[str, int, int]]] = {}
    offset = 0
    for ref in f.chunks:
        queues.setdefault(pools.lane(ref.id), deque()).append((ref.id, ref.length, offset))
        offset += ref.length
    share = max(2, MAX_IN_FLIGHT // max(1, len(queues)))
    inflight: dict[Future[None], tuple[str, int]] = {}
    busy = dict.fromkeys(queues, 0)

    policy = ws.repo.policy_for(model)

    def place(fd: int, chunk_id: str, length: int, at: int) -> None:
        pwrite_all(fd, chunks.get(chunk_id, length, policy), at)

    try:
        with open(tmp, "xb", buffering=0) as out:
            fd = out.fileno()
            while inflight or any(queues.values()):
                ctx.check()
                for lane, queue in queues.items():
                    while queue and busy[lane] < share:
                        chunk_id, length, at = queue.popleft()
                        fut = pools.submit(lane, place, fd, chunk_id, length, at)
                        inflight[fut] = (lane, length)
                        busy[lane] += 1
                finished, _pending = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    fut.result()
                    lane, length = inflight.pop(fut)
                    busy[lane] -= 1
                    done[0] += length
                ctx.report(done[0], total, f.path)
            fsync_fd(fd)
        os.replace(tmp, target)
    except OSError as e:
        raise UserError(f"cannot write file ({e.strerror or e})", path=target) from None
    finally:
        for fut in inflight:
            fut.cancel()
        for fut in inflight:
            if not fut.cancelled():
                fut.exception()  # the worker writes into the file: wait before removing it
        tmp.unlink(missing_ok=True)


def export_manifest(
    ws: Workspace,
    manifest: Manifest,
    dest: Path,
    *,
    force: bool = False,
    ctx: JobContext | None = None,
    workers: int | None = None,
) -> ExportResult:
    """Write every file of ``manifest`` under ``dest`` with its relative name and bytes."""
    ctx = ctx or JobContext()
    dest = Path(dest)
    targets = _targets(manifest, dest, force)
    total = manifest.logical_bytes
    done = [0]
    devices = max(1, len(ws.repo.chunks.readable_devices()))
    per_device = workers or max(2, default_workers() // devices)
    degraded_before = ws.repo.chunks.degraded_reads
    with DevicePools(ws.repo.chunks, per_device) as pools:
        for f, target in targets:
            _write_file(ws, manifest.model, f, target, pools, ctx, done, total)
    for folder in {t.parent for _f, t in targets}:
        fsync_dir(folder)
    degraded = ws.repo.chunks.degraded_reads - degraded_before
    return ExportResult(manifest, dest, tuple(t for _f, t in targets), total, degraded)


def export_ref(
    ws: Workspace, ref: str, dest: Path, *, force: bool = False, ctx: JobContext | None = None,
    workers: int | None = None,
) -> ExportResult:  # fmt: skip
    """Export the version a reference names (see :func:`export_manifest`)."""
    return export_manifest(ws, ws.repo.resolve(ref), dest, force=force, ctx=ctx, workers=workers)
