"""A full sync read by two processes (issue 18): the child answers for its share of the
manifests with exactly the rows this process would make, damaged manifests are left out the
same way, and whatever the child does not deliver (it cannot start, dies, or sends junk) is
read by the parent, so the catalog is the same in every case."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelmanager.core.catalog import prepared as prepared_module
from modelmanager.core.catalog import reader
from modelmanager.core.catalog.prepared import prepare
from modelmanager.core.repo.versions import manifest_key
from modelmanager.errors import IntegrityError
from modelmanager.services import Workspace
from tests.core.test_catalog_batches import _populate, _rows

#: What each started child was (filled by the ``children`` fixture).
Started = list[Any]


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> Started:
    """Two processes from the second manifest on; every child started is recorded."""
    monkeypatch.setattr(reader, "PARALLEL_FROM", 2)
    monkeypatch.setattr(reader, "usable_cores", lambda: 2)
    started: Started = []
    real = reader._Child.start

    def start(repo: Any, keys: list[tuple[str, int]]) -> Any:
        child = real(repo, keys)
        started.append(child)
        return child

    monkeypatch.setattr(reader._Child, "start", staticmethod(start))
    return started


def _slow_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent makes each row slowly, so the child (the real, fast one) answers for its
    whole share before the parent could take any of it."""

    def slow(*args: Any) -> Any:
        time.sleep(0.4)
        return prepare(*args)

    monkeypatch.setattr(reader, "prepare", slow)


def _damage(ws: Workspace, model: str, seq: int) -> None:
    path = ws.repo.root / manifest_key(model, seq)
    path.write_bytes(path.read_bytes().replace(b'"message":"', b'"message":"X', 1))
    with pytest.raises(IntegrityError):
        ws.repo.read_manifest_key(manifest_key(model, seq))


def test_the_child_makes_the_rows_this_process_makes(ws: Workspace, tmp_path: Path) -> None:
    _populate(ws, tmp_path)
    keys = list(ws.repo.manifest_keys())
    child = reader._Child.start(ws.repo, keys)
    assert child is not None
    assert child.proc.wait(timeout=60) == 0  # it answered for everything, and ended
    child.stop()
    assert child.ended
    assert child.skipped == set()
    assert child.rows == {k: prepare(k, ws.repo.read_manifest_key(k), s) for k, s in keys}


def test_the_child_reports_a_damaged_manifest_and_makes_no_row_of_it(
    ws: Workspace, tmp_path: Path
) -> None:
    _populate(ws, tmp_path)
    _damage(ws, "bravo", 1)
    keys = list(ws.repo.manifest_keys())
    child = reader._Child.start(ws.repo, keys)
    assert child is not None
    assert child.proc.wait(timeout=60) == 0
    child.stop()
    assert child.skipped == {manifest_key("bravo", 1)}
    assert set(child.rows) == {k for k, _s in keys} - {manifest_key("bravo", 1)}


def test_a_rebuild_with_a_child_leaves_the_rows_of_one_process(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Started
) -> None:
    _populate(ws, tmp_path)
    one_process = _rows(ws)
    _slow_parent(monkeypatch)
    heard: list[tuple[int, int]] = []
    assert ws.catalog.rebuild(lambda done, total: heard.append((done, total))).added == 8
    assert _rows(ws) == one_process
    (child,) = children
    assert len(child.rows) == 4  # every other manifest: the child's share, all of it
    assert heard[-1] == (8, 8)
    assert [d for d, _t in heard] == sorted(d for d, _t in heard)


def test_a_damaged_manifest_is_left_out_by_two_processes_as_by_one(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Started
) -> None:
    _populate(ws, tmp_path)
    for model, seq in (("org/alpha", 2), ("bravo", 1)):  # one in each share
        _damage(ws, model, seq)
    monkeypatch.setattr(reader, "PARALLEL_FROM", 10**9)
    assert ws.catalog.rebuild().added == 6
    one_process = _rows(ws)
    monkeypatch.setattr(reader, "PARALLEL_FROM", 2)
    _slow_parent(monkeypatch)
    assert ws.catalog.rebuild().added == 6
    assert _rows(ws) == one_process
    (child,) = children
    assert len(child.skipped) == 1


@pytest.mark.parametrize(
    "code",
    [
        "import sys; sys.exit(3)",  # dies at once
        "import sys; sys.stdout.buffer.write(b'\\x05' + bytes(7) + b'junk!')",  # not marshal
        # well-formed marshal, but rows for a key nobody asked for
        "import marshal, sys; b = marshal.dumps(([('x', 1, 'm', (), ('', '', ''), [], [])], []));"
        " sys.stdout.buffer.write(len(b).to_bytes(8, 'little') + b)",
        "import time; time.sleep(600)",  # never answers: the parent takes its share
    ],
)
def test_whatever_the_child_does_not_deliver_is_read_by_the_parent(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Started, code: str
) -> None:
    _populate(ws, tmp_path)
    one_process = _rows(ws)
    monkeypatch.setattr(reader, "_CHILD_CODE", code)
    # A slow parent finds a child that failed already ended when its own share is done: what
    # the child left is read by the last pass. (A quick parent takes the child's share from
    # its end before the child has even started, a path the hanging child covers.)
    _slow_parent(monkeypatch)
    started = time.monotonic()
    assert ws.catalog.rebuild().added == 8
    assert time.monotonic() - started < 60
    assert _rows(ws) == one_process
    (child,) = children
    assert child.rows == {}
    assert child.proc.returncode is not None  # stopped, not left running


def test_a_child_that_cannot_start_leaves_the_work_to_the_parent(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Started
) -> None:
    _populate(ws, tmp_path)
    one_process = _rows(ws)
    monkeypatch.setattr(reader, "python_child", lambda *a: [str(tmp_path / "no-such-program")])
    assert ws.catalog.rebuild().added == 8
    assert _rows(ws) == one_process
    assert children == [None]


def test_a_few_manifests_or_one_core_take_no_child(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Started
) -> None:
    _populate(ws, tmp_path)
    monkeypatch.setattr(reader, "PARALLEL_FROM", 9)
    assert ws.catalog.rebuild().added == 8
    monkeypatch.setattr(reader, "PARALLEL_FROM", 2)
    monkeypatch.setattr(reader, "usable_cores", lambda: 1)
    assert ws.catalog.rebuild().added == 8
    assert children == []


def test_prepared_rows_pass_the_shape_check_and_junk_does_not(
    ws: Workspace, tmp_path: Path
) -> None:
    _populate(ws, tmp_path)
    key, size = next(iter(ws.repo.manifest_keys()))
    good = prepare(key, ws.repo.read_manifest_key(key), size)
    assert prepared_module.well_formed(good)
    assert not prepared_module.well_formed(good[:6])
    assert not prepared_module.well_formed((*good[:3], good[3][:5], *good[4:]))
    assert not prepared_module.well_formed(("other", *good[1:]))  # a row of another key
    assert not prepared_module.well_formed(list(good))
