"""core/chunks/writer.write_file: one read of a file stores its chunks and digests its tensors;
a file that grows or shrinks while it is read is refused by name (nothing of it referenced)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.chunks.plan import plan_chunks
from modelmanager.core.chunks.writer import ChunkWriter, FileToWrite, write_file
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.formats import index_file
from modelmanager.core.ids import DIGEST_HEX_LEN, content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.repository import Repository
from modelmanager.errors import UserError
from tests.support.builders import write_safetensors

CHUNK = 4096


def _source(path: Path) -> FileToWrite:
    st = path.stat()
    index = index_file(path, st.st_size)
    ranges = plan_chunks(st.st_size, index.chunk_regions(), chunk_size=CHUNK, group_size=1024)
    return FileToWrite(path, st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino), index, ranges)


def _weights(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    return write_safetensors(tmp_path / "w.safetensors", {
        "a": rng.standard_normal((64, 64)).astype(np.float32),  # 16 KiB: spans four chunks
        "b": rng.standard_normal(256).astype(np.float32),  # exactly one chunk
        "c": rng.standard_normal(8).astype(np.float32),  # shares a chunk
    })  # fmt: skip


def test_one_read_stores_every_chunk_and_digests_every_tensor(tmp_path: Path) -> None:
    repo = Repository.create(
        tmp_path / "repo", chunk_size=CHUNK, group_size=1024, codec=CodecSettings("zstd")
    )
    path = _weights(tmp_path)
    src = _source(path)
    counted: list[int] = []
    with ChunkWriter(repo.chunks, CHUNK, CodecSettings("zstd"), Policy(), 2) as writer:
        written = write_file(src, writer, JobContext(), counted.append)
    data = path.read_bytes()
    assert written.chunk_ids == tuple(content_id(data[s:e]) for s, e in src.ranges)
    assert counted == [e - s for s, e in src.ranges]
    repo.chunks.flush()
    assert all(repo.chunks.has(cid, Policy()) for cid in written.chunk_ids)
    digests = {t.name: d for t, d in written.tensors}
    assert digests == {t.name: content_id(data[t.start : t.end])[:DIGEST_HEX_LEN]
                       for t in src.index.tensors}  # fmt: skip


def _grow(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"more")


@pytest.mark.parametrize(("change", "message"), [
    (_grow, "holds more bytes than its size"),
    (lambda f: os.truncate(f, 100), "shrank while it was being imported"),
])  # fmt: skip
def test_a_file_changed_while_it_is_read_is_refused_by_name(
    tmp_path: Path, change: Callable[[Path], None], message: str
) -> None:
    repo = Repository.create(
        tmp_path / "repo", chunk_size=CHUNK, group_size=1024, codec=CodecSettings("zstd")
    )
    path = _weights(tmp_path)
    src = _source(path)
    changed: list[bool] = []

    def stored(_n: int) -> None:  # after the first chunk is stored, the file changes
        if not changed:
            changed.append(True)
            change(path)

    with (ChunkWriter(repo.chunks, CHUNK, CodecSettings("zstd"), Policy(), 1) as writer,
          pytest.raises(UserError, match=message) as caught):  # fmt: skip
        write_file(src, writer, JobContext(), stored)
    assert str(path) in str(caught.value)
