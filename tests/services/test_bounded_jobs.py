"""Whole-repository jobs hold a bounded window of chunk records, not one per chunk (issue 18)."""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

import pytest

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.jobs import default_workers
from modelmanager.core.redundancy import health
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import verify
from modelmanager.services.redundancy import scrub, survey

CHUNK = 4096
CHUNKS = 300  # far more than the window (twice the workers, at most 16)


def test_scrub_keeps_at_most_a_window_of_chunk_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=CHUNK)
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(CHUNKS * CHUNK))
    import_paths(ws, [data], "org/model")
    shared = tmp_path / "more.bin"  # a second version sharing every chunk of the first
    shared.write_bytes(data.read_bytes() + os.urandom(CHUNK))
    import_paths(ws, [shared], "org/model")

    alive: set[int] = set()
    lock = threading.Lock()
    most = 0

    class Counted(health.ChunkHealth):
        """A chunk record that counts itself alive until it is freed."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            key = id(self)
            with lock:
                alive.add(key)
            weakref.finalize(self, alive.discard, key)

    real_check = health._check

    def check(chunks: object, h: health.ChunkHealth) -> health.ChunkHealth:
        nonlocal most
        with lock:
            most = max(most, len(alive))
        return real_check(chunks, h)  # type: ignore[arg-type]

    monkeypatch.setattr(health, "ChunkHealth", Counted)
    monkeypatch.setattr(health, "_check", check)

    report = scrub(ws)
    assert report.ok
    assert report.chunks == CHUNKS + 1
    assert 0 < most <= 2 * default_workers() + 1  # the window, and the one being reported

    # Repair's survey still returns every record, with every version that needs each chunk.
    records = survey(ws)
    assert len(records) == CHUNKS + 1
    assert sum(len(h.refs) == 2 for h in records) == CHUNKS


def test_verify_names_every_version_of_a_damaged_chunk(tmp_path: Path) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=CHUNK)
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(20 * CHUNK))
    first = import_paths(ws, [data], "org/a").manifest.ref
    second = import_paths(ws, [data], "org/b").manifest.ref
    victim = ws.repo.resolve(first).files[0].chunks[3].id
    path = ws.repo.root / chunk_key(victim)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))

    report = verify(ws)
    assert [(p.kind, p.subject, p.versions) for p in report.problems] == [
        ("corrupt", victim, tuple(sorted([first, second])))
    ]
    assert report.versions == 2
    assert report.chunks == 20
