"""Several processes on one repository at once: real CLI processes, a real repository and a real
SQLite catalog. Writers take turns (or wait), readers never fail, nothing ends in a traceback."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.catalog import Catalog, catalog_path
from modelmanager.core.catalog import db as catalog_db
from modelmanager.core.repo.versions import manifest_key
from modelmanager.errors import EXIT_BUG, LockedError
from modelmanager.services import Workspace, init_repository, open_workspace
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from tests.conftest import TEST_CHUNK, TEST_GROUP, subprocess_env
from tests.support.builders import small_model, tree_bytes, write_safetensors


def _cli(repo: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "modelmanager", "--repo", str(repo), *args]


def _source(folder: Path, seed: int) -> Path:
    """A small safetensors folder whose content depends on ``seed``."""
    write_safetensors(folder / "model.safetensors", small_model(np.random.default_rng(seed), 4))
    (folder / "config.json").write_text(f'{{"seed": {seed}}}')
    return folder


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for ``proc``; its exit code and stderr (a traceback there fails the test)."""
    _out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode != EXIT_BUG, err
    return proc.returncode, err


def _new_repo(path: Path) -> Path:
    init_repository(path, chunk_size=TEST_CHUNK, group_size=TEST_GROUP).close()
    return path


@pytest.mark.slow
def test_two_imports_of_one_model_at_once_both_land_as_1_and_2(tmp_path: Path) -> None:
    # Each round a new repository (its catalog made by init). Before the fix 16 rounds of 80
    # ended in a traceback ("database is locked" from the catalog sync on opening).
    env = subprocess_env(tmp_path)
    failed: list[str] = []
    for r in range(20):
        repo = _new_repo(tmp_path / f"repo{r}")
        sources = [_source(tmp_path / f"src{r}-{i}", 100 * r + i) for i in (0, 1)]
        procs = [_start(_cli(repo, "import", str(s), "--model", "m"), env) for s in sources]
        for proc in procs:
            code, err = _finish(proc)
            if code:
                failed.append(f"round {r}: exit {code}: {err.strip()}")
        ws = open_workspace(repo)
        try:
            assert ws.repo.version_numbers("m") == [1, 2], r
            assert [v.seq for v in ws.catalog.versions("m")] == [2, 1], r
            exported = []
            for seq in (1, 2):
                export_ref(ws, f"m@{seq}", tmp_path / f"out{r}-{seq}")
                exported.append(tree_bytes(tmp_path / f"out{r}-{seq}"))
        finally:
            ws.close()
        wanted = [tree_bytes(s) for s in sources]
        assert exported in (wanted, wanted[::-1]), f"round {r}: an export differs from its source"
    assert not failed


@pytest.mark.slow
def test_import_beside_listing_loops_in_other_processes_never_fails(tmp_path: Path) -> None:
    # Three processes at a time run ls, log and search in loops while 20 imports follow each
    # other. Before the fix 4 to 28 of about 120 commands ended in exit 70.
    repo = _new_repo(tmp_path / "repo")
    env = subprocess_env(tmp_path)
    first = _start(_cli(repo, "import", str(_source(tmp_path / "src", 0)), "--model", "m"), env)
    assert _finish(first)[0] == 0
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    done = threading.Event()

    def run(name: str, cmd: list[str]) -> None:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        with lock:
            results.append((name, proc.returncode, proc.stderr))

    def loop(name: str, cmd: list[str]) -> None:
        while not done.is_set():
            run(name, cmd)

    readers = [
        threading.Thread(target=loop, args=(name, _cli(repo, *args)))
        for name, args in (("ls", ["ls"]), ("log", ["log", "m"]), ("search", ["search", "m"]))
    ]  # fmt: skip
    for t in readers:
        t.start()
    try:
        for r in range(1, 21):
            src = _source(tmp_path / f"src{r}", r)
            run("import", _cli(repo, "import", str(src), "--model", "m"))
    finally:
        done.set()
        for t in readers:
            t.join()
    bad = [(name, code, err) for name, code, err in results if code != 0 or "Traceback" in err]
    assert not bad, f"{len(bad)} of {len(results)} commands failed: {bad[:3]}"
    assert len(results) >= 20 + 3 * 20
    ws = open_workspace(repo)
    try:
        assert ws.repo.version_numbers("m") == list(range(1, 22))
        assert len(ws.catalog.versions("m")) == 21
    finally:
        ws.close()


@pytest.mark.slow
def test_concurrent_labels_and_removals_complete_or_refuse_in_one_line(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "repo")
    env = subprocess_env(tmp_path)
    ws = open_workspace(repo)
    try:
        for i in range(1, 9):
            import_paths(ws, [_source(tmp_path / f"src{i}", i)], "m")
    finally:
        ws.close()
    for r in range(3):
        # Two processes move one label to different versions, two set different labels.
        procs = [_start(_cli(repo, "label", f"m@{v}", name), env)
                 for v, name in ((1, "prod"), (2, "prod"), (3, f"a{r}"), (4, f"b{r}"))]  # fmt: skip
        assert [_finish(p)[0] for p in procs] == [0, 0, 0, 0]
        ws = open_workspace(repo)
        try:
            labels = ws.repo.read_labels("m")
            assert labels["prod"] in (1, 2)
            assert (labels[f"a{r}"], labels[f"b{r}"]) == (3, 4)
            listed = {name: v.seq for v in ws.catalog.versions("m") for name in v.labels}
            assert listed == labels
        finally:
            ws.close()
    # Two processes remove the same version: one removes it, the other says it is gone.
    for seq in (5, 6, 7):
        procs = [_start(_cli(repo, "rm", f"m@{seq}", "--force"), env) for _ in range(2)]
        outcomes = sorted(_finish(p) for p in procs)
        assert outcomes[0][0] == 0, outcomes
        assert outcomes[1][0] in (0, 2), outcomes
        errors = [line for line in outcomes[1][1].splitlines() if "error:" in line]
        assert len(errors) <= 1, outcomes
    ws = open_workspace(repo)
    try:
        assert ws.repo.version_numbers("m") == [1, 2, 3, 4, 8]
        assert [v.seq for v in ws.catalog.versions("m")] == [8, 4, 3, 2, 1]
    finally:
        ws.close()


def test_many_processes_opening_a_new_catalog_at_once(tmp_path: Path) -> None:
    # Before the fix 8 of 90 such opens failed: "table versions already exists" (two processes
    # both made the schema) or "database is locked" (and the file was then deleted as damaged).
    repo = _new_repo(tmp_path / "repo")
    for r in range(3):
        env = subprocess_env(tmp_path, MODELMANAGER_CACHE=str(tmp_path / f"cache{r}"))
        procs = [_start(_cli(repo, "ls", "--json"), env) for _ in range(5)]
        assert [_finish(p)[0] for p in procs] == [0] * 5


def test_processes_started_together_on_first_use_make_one_default_repository(
    tmp_path: Path,
) -> None:
    # Before the fix 2 of 40 such starts failed: "no repository here" (the folder was half
    # made by another process) or "database is locked".
    for r in range(3):
        env = subprocess_env(tmp_path, MODELMANAGER_DATA=str(tmp_path / f"data{r}"))
        procs = [_start([sys.executable, "-m", "modelmanager", "ls", "--json"], env)
                 for _ in range(4)]  # fmt: skip
        assert [_finish(p)[0] for p in procs] == [0] * 4
        made = open_workspace(tmp_path / f"data{r}" / "repository")
        made.close()


HOLD_CATALOG = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO bench VALUES('held', '', 'device', '', '', '', '', 0, '', 0, 0.0)")
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


@contextmanager
def catalog_write_held(path: Path) -> Iterator[None]:
    """Another process inside a write transaction of the catalog at ``path`` for the block."""
    with subprocess.Popen([sys.executable, "-c", HOLD_CATALOG, str(path)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield
        finally:
            proc.stdin.write("\n")
            proc.stdin.close()
            assert proc.wait(30) == 0


def test_busy_catalog_is_a_locked_error_and_never_thrown_away(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_paths(ws, [_source(tmp_path / "src", 1)], "m")
    monkeypatch.setattr(catalog_db, "BUSY_TIMEOUT", 0.3)
    with catalog_write_held(ws.catalog.path):
        # Up to date: opening only reads, so another process's write is no matter.
        catalog = Catalog.open(tmp_path / "cache", ws.repo)
        try:
            assert [v.seq for v in catalog.versions("m")] == [1]
            # A write waits for its turn, then gives up in one line naming the catalog file.
            with pytest.raises(LockedError, match="catalog is being written") as info:
                catalog.refresh_labels("m")
            assert info.value.path == str(ws.catalog.path)
        finally:
            catalog.close()
    # The file was kept: the other process's row is there.
    assert [r.run for r in ws.catalog.bench_rows()] == ["held"]


def test_rebuild_keeps_the_file_other_processes_have_open(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_source(tmp_path / "a", 1)], "m")
    import_paths(ws, [_source(tmp_path / "b", 2)], "m")
    other = Catalog.open(tmp_path / "cache", ws.repo)
    try:
        assert catalog_path(tmp_path / "cache", ws.repo) == other.path == ws.catalog.path
        ws.catalog.rebuild()
        # The other connection's write lands in the one file both see (it was once deleted
        # and remade under it, so this write went to a file nobody else read).
        other.remove_version(manifest_key("m", 1), "m")
        assert [v.seq for v in ws.catalog.versions("m")] == [2]
    finally:
        other.close()
