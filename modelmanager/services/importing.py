"""Import files and folders as a new version of a model.

Every input is read and validated before the first byte is stored, so bad input leaves the
repository untouched. Then, under the writer lock, each file is read once, in order, into a
small pool of reused buffers; a thread pool hashes, deduplicates, compresses and writes the
chunks (zstandard, blake3 and file I/O release the GIL), while this thread digests tensors.
Memory in flight is bounded by the pool. Chunks are flushed, then the manifest is written,
then labels, then the catalog row: a crash at any point leaves no partial version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmanager.core.chunks.plan import Range, plan_chunks
from modelmanager.core.chunks.writer import ChunkWriter, FileToWrite, unstored_bytes, write_file
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.faults import crash_point
from modelmanager.core.formats import FileIndex, index_file, merge_facts
from modelmanager.core.jobs import JobContext
from modelmanager.core.jobs import default_workers as default_workers  # re-exported
from modelmanager.core.localfiles import Listed, list_input
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.manifest import ChunkRef, FileRecord, Manifest, TensorRecord
from modelmanager.core.repo.names import check_label, check_model_name, check_relpath
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.repo.versions import manifest_key, utc_now
from modelmanager.errors import UserError
from modelmanager.services import Changes, Workspace

#: Folders never imported from a model folder (version-control internals).
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})


@dataclass(frozen=True)
class SourceFile:
    """A file to import: where it is, the name it gets in the version, what it holds."""

    relpath: str
    path: Path
    size: int
    mtime_ns: int
    index: FileIndex
    identity: tuple[int, int] = (0, 0)  # (device, inode) when listed; checked on every open


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    manifest: Manifest
    files: int
    logical_bytes: int
    chunks: int
    new_chunks: int
    new_stored_bytes: int
    changes: Changes
    device_problems: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The new version (keys as ``log`` names them) and what storing it took."""
        m = self.manifest
        return {"ref": m.ref, "model": m.model, "version": m.seq, "files": self.files,
                "logical_bytes": self.logical_bytes, "chunks": self.chunks,
                "new_chunks": self.new_chunks, "new_stored_bytes": self.new_stored_bytes,
                "device_problems": dict(sorted(self.device_problems.items()))}  # fmt: skip


def collect_files(
    paths: Sequence[Path],
    names: Mapping[Path, str] | None = None,
    *,
    symlinks: str = "inside",
    confine: Path | None = None,
) -> list[Listed]:
    """Every regular file to import, sorted by name; see :mod:`modelmanager.core.localfiles`.

    A file keeps its own name (or the one ``names`` gives it: an Ollama blob becomes
    ``model.gguf``); a folder contributes its files with names relative to it. ``symlinks``
    is the rule for links (inside, follow, refuse); ``confine`` the root links must stay in
    when it is not the folder named (adopt gives the store's folder).
    """
    if not paths:
        raise UserError("nothing to import: give at least one file or folder")
    found: dict[str, Listed] = {}
    for root in paths:
        root = Path(root)
        entries = list_input(root, rule=symlinks, name=(names or {}).get(root), confine=confine,
                             skip=SKIPPED_DIRS)  # fmt: skip
        for entry in entries:
            try:
                check_relpath(entry.relpath)
            except ValueError:
                raise UserError("file name cannot be stored portably", path=entry.path) from None
            if entry.relpath in found:
                raise UserError(
                    f"two inputs would both be stored as {entry.relpath!r} "
                    f"({found[entry.relpath].path} and {entry.path}); import them as separate "
                    "models",
                    path=entry.path,
                )
            found[entry.relpath] = entry
    if not found:
        raise UserError("nothing to import: the folders hold no files", path=paths[0])
    return [found[k] for k in sorted(found)]


def scan_sources(
    paths: Sequence[Path],
    names: Mapping[Path, str] | None = None,
    *,
    symlinks: str = "inside",
    confine: Path | None = None,
) -> list[SourceFile]:
    """Collect and parse every input; any bad file raises before anything is stored."""
    return [
        SourceFile(
            f.relpath,
            f.path,
            f.size,
            f.mtime_ns,
            index_file(f.path, f.size, f.identity, f.relpath),
            f.identity,
        )
        for f in collect_files(paths, names, symlinks=symlinks, confine=confine)
    ]


def derive_metadata(sources: Sequence[SourceFile]) -> dict[str, Any]:
    """A version's metadata from its inputs: the facts each file's index states, merged in
    file order (:func:`~modelmanager.core.formats.merge_facts`: config.json and the model card
    win), then the parameter count of every tensor."""
    meta: dict[str, Any] = merge_facts(src.index for src in sources)
    params = sum(t.numel for src in sources for t in src.index.tensors)
    if params:
        meta["parameters"] = params
    return meta


def _chunk_ranges(ws: Workspace, src: SourceFile) -> list[Range]:
    """The (start, end) of each chunk of ``src``, as this repository cuts it."""
    config = ws.repo.config
    return plan_chunks(src.size, src.index.chunk_regions(), chunk_size=config.chunk_size,
                       group_size=config.group_size)  # fmt: skip


def _to_write(ws: Workspace, src: SourceFile) -> FileToWrite:
    """``src`` as the chunk writer takes it, with the ranges this repository cuts it into."""
    return FileToWrite(src.path, src.size, src.mtime_ns, src.identity, src.index,
                       _chunk_ranges(ws, src))  # fmt: skip


def _import_file(
    src: SourceFile, writer: ChunkWriter, ws: Workspace, ctx: JobContext, done: list[int],
    total: int,
) -> FileRecord:  # fmt: skip
    """Store ``src`` (:func:`~modelmanager.core.chunks.writer.write_file`) and describe it as
    a version's file record; progress counts its bytes into ``done``."""
    target = _to_write(ws, src)
    ranges = target.ranges

    def stored(n: int) -> None:
        done[0] += n
        ctx.report(done[0], total, src.relpath)

    written = write_file(target, writer, ctx, stored)
    chunks = tuple(ChunkRef(cid, e - s) for cid, (s, e) in zip(written.chunk_ids, ranges,
                                                                strict=True))  # fmt: skip
    tensors = tuple(TensorRecord(t.name, t.dtype, t.shape, t.start, t.end, digest)
                    for t, digest in written.tensors)  # fmt: skip
    return FileRecord(src.relpath, src.size, src.index.format, chunks, tensors,
                      dict(src.index.metadata))  # fmt: skip


def _check_room(ws: Workspace, sources: list[SourceFile], policy: Policy, ctx: JobContext) -> None:
    """Refuse an import that cannot fit, before anything is written.

    The sizes times the policy's overhead bound what it can need (no compression, nothing
    deduplicated). Only when that bound does not fit are the chunks hashed (BLAKE3, without
    storing) to count what is really new; that count, still uncompressed, is what is checked.
    """
    chunks = ws.repo.chunks
    total, _summary = chunks.room()
    bound = sum(s.size for s in sources) * policy.overhead
    if total is None or bound <= total:
        return
    new = unstored_bytes(chunks, [_to_write(ws, src) for src in sources], policy, ctx)
    chunks.require_room(int(new * policy.overhead), f"this import ({len(sources)} files)")


def import_paths(
    ws: Workspace,
    paths: Sequence[Path],
    model: str,
    *,
    message: str = "",
    labels: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
    codec: CodecSettings | None = None,
    ctx: JobContext | None = None,
    workers: int | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    names: Mapping[Path, str] | None = None,
    symlinks: str = "inside",
    confine: Path | None = None,
) -> ImportResult:
    """Import ``paths`` as the next version of ``model``; see the module docstring.

    ``names`` stores given files under other names (relative paths) than their own;
    ``symlinks`` and ``confine`` say which links are followed (see :func:`collect_files`)."""
    given, ctx = ctx, ctx or JobContext()  # the caller's own ctx is watched while waiting
    check_model_name(model)
    labels = tuple(dict.fromkeys(check_label(label) for label in labels))
    sources = scan_sources(paths, names, symlinks=symlinks, confine=confine)
    meta = derive_metadata(sources)
    meta.update(metadata or {})
    repo = ws.repo
    total = sum(s.size for s in sources)
    with repo.writer(lock_timeout, ctx=given):
        existing = repo.existing_model_name(model)
        if existing is not None and existing != model:
            raise UserError(f"a model named {existing!r} exists; names may not differ only in case")
        seqs = repo.version_numbers(model)
        policy = repo.policy_for(model)
        repo.chunks.refresh()
        settings = codec or repo.codec_for(model)
        _check_room(ws, sources, policy, ctx)
        done = [0]
        with ChunkWriter(repo.chunks, repo.config.chunk_size, settings, policy,
                         workers or default_workers()) as writer:  # fmt: skip
            files = tuple(_import_file(s, writer, ws, ctx, done, total) for s in sources)
        ctx.check()
        repo.chunks.flush()
        manifest = Manifest(
            model=model,
            seq=repo.next_seq(model),
            parent=seqs[-1] if seqs else None,
            created=utc_now(),
            message=message,
            metadata=meta,
            files=files,
        )
        size = repo.commit_version(manifest, labels)
        ws.catalog.add_version(manifest_key(model, manifest.seq), manifest, size)
        crash_point("after-catalog")
    return ImportResult(
        manifest=manifest,
        files=len(files),
        logical_bytes=manifest.logical_bytes,
        chunks=sum(len(f.chunks) for f in files),
        new_chunks=writer.new_chunks,
        new_stored_bytes=writer.new_bytes,
        changes=Changes(frozenset({model}), (manifest.ref,), storage=writer.new_chunks > 0),
        device_problems=repo.chunks.write_problems(),
    )
