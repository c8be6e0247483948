"""Write a version's files back out, byte for byte, under a destination folder.

Composition: reads through :class:`modelmanager.services.loading.Fetcher` (the workspace's
policy and measured read strategy), so an export reads as a load does.

Chunks are fetched per device, decoded and verified against their ids on a thread pool, and
written at their offsets as they arrive (core.chunks.fetch); a bounded window keeps
memory flat. Each file is written to a temporary name, synced, and renamed, so a destination
never holds a half-written file under its name.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmanager.core.chunks import fetch
from modelmanager.core.ids import BytesLike
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.manifest import FileRecord, Manifest
from modelmanager.core.storage.atomic import fsync_dir, fsync_fd, temp_path_for
from modelmanager.errors import UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.loading import Fetcher


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote (outside the repository: ``changes`` is empty, nothing in it
    changed)."""

    manifest: Manifest
    dest: Path
    files: tuple[Path, ...]
    bytes: int
    degraded_chunks: int = 0
    changes: Changes = field(default_factory=Changes)

    def to_json(self) -> dict[str, Any]:
        """The version (keys as ``log`` names them: ``files`` is a count), where every file
        was written, and their bytes."""
        m = self.manifest
        return {"ref": m.ref, "model": m.model, "version": m.seq, "dest": str(self.dest),
                "files": len(self.files), "file_paths": [str(p) for p in self.files],
                "bytes": self.bytes, "degraded_chunks": self.degraded_chunks}  # fmt: skip


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


def _write_file(fetcher: fetch.Fetcher, f: FileRecord, target: Path) -> None:
    """Each chunk is fetched, verified and written at its offset as it arrives (any order)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        with open(tmp, "xb", buffering=0) as out:
            fd = out.fileno()
            fetcher.fetch(f, lambda at, data: pwrite_all(fd, data, at))
            fsync_fd(fd)
        os.replace(tmp, target)
    except OSError as e:
        raise UserError(f"cannot write file ({e.strerror or e})", path=target) from None
    finally:
        tmp.unlink(missing_ok=True)


def export_manifest(
    ws: Workspace,
    manifest: Manifest,
    dest: Path,
    *,
    force: bool = False,
    ctx: JobContext | None = None,
    workers: int | None = None,
    strategy: str | None = None,
) -> ExportResult:
    """Write every file of ``manifest`` under ``dest`` with its relative name and bytes."""
    ctx = ctx or JobContext()
    dest = Path(dest)
    targets = _targets(manifest, dest, force)
    with Fetcher(ws, manifest, ctx, threads=workers, strategy=strategy) as fetcher:
        for f, target in targets:
            _write_file(fetcher, f, target)
    for folder in {t.parent for _f, t in targets}:
        fsync_dir(folder)
    files = tuple(t for _f, t in targets)
    return ExportResult(manifest, dest, files, manifest.logical_bytes, fetcher.degraded)


def export_ref(
    ws: Workspace, ref: str, dest: Path, *, force: bool = False, ctx: JobContext | None = None,
    workers: int | None = None, strategy: str | None = None,
) -> ExportResult:  # fmt: skip
    """Export the version a reference names (see :func:`export_manifest`)."""
    manifest = ws.repo.resolve(ref)
    return export_manifest(ws, manifest, dest, force=force, ctx=ctx, workers=workers,
                           strategy=strategy)  # fmt: skip
