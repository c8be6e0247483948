"""Team remotes without lost versions: two repositories pushing one model name at once.

Against a loopback S3 API with atomic conditional writes, the same API with them ignored (the
lease lock then claims numbers), a remote set to the lease lock, and a shared folder. Real
repositories, real threads racing, real exports compared byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("s3fs")

from modelmanager import paths
from modelmanager.core.remote.cache import ManifestCache
from modelmanager.core.remote.journals import label_entries
from modelmanager.core.remote.lease import LeaseLock
from modelmanager.core.storage.local import LocalBlobStore
from modelmanager.core.storage.remote import FsspecBlobStore, RemoteError
from modelmanager.errors import UserError
from modelmanager.services import Workspace, init_repository
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import (
    RemoteRepository,
    RemoteSpec,
    TransferResult,
    add_remote,
    list_remotes,
    open_remote,
    pull,
    push,
)
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, tree_bytes, write_safetensors
from tests.support.s3 import TEST_KEYS
from tests.support.s3_atomic import ATOMIC, IGNORING, serialized_moto_server

#: Rounds of the race. A server that ignores conditional writes takes the lease path that
#: "lease" already runs 20 times: 5 rounds show the probe finds it and falls back.
ROUNDS = {"s3": 20, "folder": 20, "lease": 20, "ignoring": 5}
TAKEN = "the remote already has shared@1 from another repository; pushed yours as shared@2"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serialized_moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)


def _source(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (64, 256)) for i in range(3)}
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(f'{{"seed": {seed}}}')
    return folder


@pytest.fixture
def teams(tmp_path: Path) -> Iterator[tuple[Workspace, Workspace]]:
    """Two repositories that each made their own ``shared@1`` (other content)."""
    made = []
    for name, seed in (("a", 1), ("b", 2)):
        ws = init_repository(tmp_path / f"repo-{name}", chunk_size=64 * 1024, group_size=4096)
        import_paths(ws, [_source(tmp_path / f"src-{name}", seed)], "shared", message=name)
        made.append(ws)
    yield made[0], made[1]
    for ws in made:
        ws.close()


def _spec(kind: str, endpoint: str, where: str, tmp_path: Path) -> RemoteSpec:
    if kind == "folder":
        return RemoteSpec("team", f"file://{tmp_path / 'remotes' / where}")
    if kind == "ignoring":  # the server drops If-None-Match: found by the probe
        return RemoteSpec("team", f"s3://{IGNORING}/{where}", endpoint=endpoint)
    return RemoteSpec("team", f"s3://{ATOMIC}/{where}", endpoint=endpoint,
                      conditional_writes=kind != "lease")  # fmt: skip


def _open(spec: RemoteSpec, like: RemoteRepository | None) -> RemoteRepository:
    """``open_remote(spec)``, reusing the S3 client of ``like`` (making one costs ~0.4 s)."""
    if like is None or not isinstance(like.blobs, FsspecBlobStore):
        return open_remote(spec)
    root = spec.url.split("://", 1)[1]
    blobs = FsspecBlobStore(like.blobs.fs, root, spec.url, conditional=spec.conditional_writes)
    return RemoteRepository(spec, blobs, ManifestCache(paths.cache_dir() / "remotes", spec.url))


def _at_once(*pushes: tuple[Workspace, RemoteRepository]) -> list[TransferResult]:
    """Run the pushes on threads released together; results in the order given."""
    gate = threading.Barrier(len(pushes))
    results: list[TransferResult | BaseException | None] = [None] * len(pushes)

    def run(i: int, ws: Workspace, remote: RemoteRepository) -> None:
        gate.wait()
        try:
            results[i] = push(ws, "shared@1", remote)
        except BaseException as e:  # handed to the test thread
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, *p)) for i, p in enumerate(pushes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    out = []
    for r in results:
        if isinstance(r, BaseException):
            raise r
        assert r is not None
        out.append(r)
    return out


@pytest.mark.parametrize("kind", ["s3", "ignoring", "lease", "folder"])
def test_two_repositories_pushing_one_name_at_once_both_keep_their_version(
    teams: tuple[Workspace, Workspace], kind: str, endpoint: str, tmp_path: Path
) -> None:
    a, b = teams
    ra = rb = None
    for n in range(ROUNDS[kind]):
        spec = _spec(kind, endpoint, f"{kind}-{n}", tmp_path)
        ra, rb = _open(spec, ra), _open(spec, rb)  # each repository its own connection
        got = _at_once((a, ra), (b, rb))
        assert sorted(r.stored_ref for r in got) == ["shared@1", "shared@2"], n
        assert all(r.manifest_written for r in got)
        assert sorted(r.notice for r in got) == ["", TAKEN], n  # the loser is told
        remote = ra
        if kind in ("ignoring", "lease"):
            assert isinstance(remote.blobs, FsspecBlobStore)
            assert not remote.blobs.conditional_writes()
        assert remote.version_numbers("shared") == [1, 2]
        # each version is found again whatever its number: pushing again writes nothing
        for ws, mine, first in zip((a, b), (ra, rb), got, strict=True):
            again = push(ws, "shared@1", mine)
            assert (again.manifest_written, again.chunks_sent) == (False, 0)
            assert again.stored_ref == first.stored_ref
        assert remote.version_numbers("shared") == [1, 2]
        # both pull back exactly into a fresh repository
        fresh = init_repository(tmp_path / f"fresh-{kind}-{n}")
        try:
            for r, src in zip(got, ("src-a", "src-b"), strict=True):
                pull(fresh, remote, r.stored_ref)
                out = tmp_path / f"out-{kind}-{n}-{src}"
                export_ref(fresh, r.stored_ref, out)
                assert tree_bytes(out) == tree_bytes(tmp_path / src), (n, r.stored_ref)
        finally:
            fresh.close()


def test_a_renumbered_version_is_known_by_its_content_on_push_and_pull(
    teams: tuple[Workspace, Workspace], endpoint: str, tmp_path: Path
) -> None:
    a, b = teams
    spec = _spec("s3", endpoint, "renumbered", tmp_path)
    set_label(b, "shared@1", "prod")
    assert push(a, "shared@1", open_remote(spec)).notice == ""
    mine = push(b, "shared@1", open_remote(spec))
    assert (mine.stored_ref, mine.notice, mine.labels) == ("shared@2", TAKEN, ("prod",))
    remote = open_remote(spec)
    assert remote.read_labels("shared") == {"prod": 2}  # the label follows the renumbering
    again = push(b, "shared@1", remote)
    assert (again.manifest_written, again.stored_ref) == (False, "shared@2")
    assert again.notice == "the remote has shared@1 already, as shared@2"
    # B's next version: its parent is named as the remote numbers it
    import_paths(b, [_source(tmp_path / "src-b2", 3)], "shared", message="b2")
    second = push(b, "shared@2", remote)
    assert second.stored_ref == "shared@3"
    assert remote.read_manifest("shared", 3).parent == 2
    # pulling its own version back under the remote's number: nothing moves
    back = pull(b, remote, "shared@2")
    assert (back.manifest_written, back.chunks_sent, back.stored_ref) == (False, 0, "shared@1")
    # A's shared@1 comes into B under B's next free number, exactly
    theirs = pull(b, remote, "shared@1")
    assert theirs.stored_ref == "shared@3"
    assert theirs.notice == ("this repository already has shared@1 with other content; "
                             "pulled it as shared@3")  # fmt: skip
    export_ref(b, "shared@3", tmp_path / "out-a")
    assert tree_bytes(tmp_path / "out-a") == tree_bytes(tmp_path / "src-a")
    assert b.repo.version_numbers("shared") == [1, 2, 3]
    assert pull(b, remote, "shared@1").manifest_written is False  # found again: no fourth
    # a label conflict is reported in each side's own numbers; the newer move (A's) wins
    set_label(a, "shared@1", "prod")
    moved = push(a, "shared@1", remote)
    assert [(c.label, c.here, c.remote, c.kept) for c in moved.label_conflicts] == [
        ("prod", 1, 2, "here")
    ]
    assert remote.read_labels("shared") == {"prod": 1}
    # B pulls: A's move comes in under B's number of that version (B's 3), with its journal
    assert pull(b, remote, "shared@2").labels == ("prod",)
    assert b.repo.read_labels("shared") == {"prod": 3}
    assert [e["new"] for e in b.repo.label_log("shared")] == [1, 3]
    there = sorted(label_entries(remote, "shared").values(), key=lambda e: e["time"])
    assert [e["new"] for e in there] == [2, 1]  # the same two moves, in the remote's numbers


def test_exact_refuses_instead_of_renumbering(
    teams: tuple[Workspace, Workspace], endpoint: str, tmp_path: Path
) -> None:
    a, b = teams
    spec = _spec("s3", endpoint, "exact", tmp_path)
    push(a, "shared@1", open_remote(spec))
    remote = open_remote(spec)
    chunks = remote.chunk_ids()
    with pytest.raises(UserError, match="the remote already has shared@1 from another repo"):
        push(b, "shared@1", remote, exact=True)
    assert remote.version_numbers("shared") == [1]
    assert remote.chunk_ids() == chunks  # refused before any chunk moved
    with pytest.raises(UserError, match="this repository has a different shared@1"):
        pull(b, remote, "shared@1", exact=True)
    assert b.repo.version_numbers("shared") == [1]


def test_a_push_that_loses_the_race_with_exact_refuses(
    teams: tuple[Workspace, Workspace], endpoint: str, tmp_path: Path
) -> None:
    """The number was free when the push looked and taken when it wrote: still no overwrite."""
    a, b = teams
    spec = _spec("s3", endpoint, "exact-race", tmp_path)
    remote = open_remote(spec)
    real = remote.claim

    def first_a_then_b(key: str, body: bytes) -> None:
        if key.endswith("00000001.json"):
            push(a, "shared@1", open_remote(spec))  # A wins between B's look and B's write
        real(key, body)

    remote.claim = first_a_then_b  # type: ignore[method-assign]
    with pytest.raises(UserError, match="the remote already has shared@1 from another repo"):
        push(b, "shared@1", remote, exact=True)
    assert open_remote(spec).resolve("shared@1").message == "a"


def test_the_lease_lock_lets_one_holder_in_and_outlives_a_crashed_one(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "remote")
    held = LeaseLock(store, "claim", wait=0.5).__enter__()
    with pytest.raises(RemoteError, match="another push holds this remote's lock"):
        LeaseLock(store, "claim", wait=0.5).__enter__()
    held.__exit__(None, None, None)
    with LeaseLock(store, "claim", wait=0.5):  # released: free again
        pass
    assert list(store.list("locks")) == []
    crashed = LeaseLock(store, "claim", lease=0.2)
    crashed.__enter__()  # never released
    time.sleep(0.3)
    with LeaseLock(store, "claim", wait=0.5):  # its lease ran out
        pass
    assert list(store.list("locks")) == []  # the stale lock object was dropped too


def test_a_remote_made_again_at_the_same_url_is_not_read_from_the_old_cache(
    teams: tuple[Workspace, Workspace], endpoint: str, tmp_path: Path
) -> None:
    a, b = teams
    for kind in ("folder", "s3"):
        spec = _spec(kind, endpoint, "recreated", tmp_path)
        push(a, "shared@1", open_remote(spec))
        assert open_remote(spec).resolve("shared@1").message == "a"  # read, and cached
        remote = open_remote(spec)
        for key, _size in list(remote.blobs.list()):  # the remote is deleted and made again
            remote.blobs.delete(key)
        push(b, "shared@1", open_remote(spec))
        fresh = open_remote(spec)
        assert fresh.resolve("shared@1").message == "b", kind
        other = init_repository(tmp_path / f"other-{kind}")
        try:
            pull(other, fresh, "shared@1")
            export_ref(other, "shared@1", tmp_path / f"out-{kind}")
            assert tree_bytes(tmp_path / f"out-{kind}") == tree_bytes(tmp_path / "src-b")
        finally:
            other.close()


def test_two_push_commands_at_once_one_is_told_and_exit_codes_are_clean(
    teams: tuple[Workspace, Workspace], endpoint: str, tmp_path: Path
) -> None:
    """The real command line in two processes; the loser's message names both numbers."""
    a, b = teams
    env = {**subprocess_env(tmp_path), **TEST_KEYS}
    cli = [sys.executable, "-m", "modelmanager"]
    spec = _spec("s3", endpoint, "cli", tmp_path)
    subprocess.run([*cli, "remote", "add", "team", spec.url, "--endpoint", endpoint], env=env,
                   check=True, capture_output=True)  # fmt: skip
    procs = [subprocess.Popen([*cli, "--repo", str(ws.repo.root), "push", "shared", "team"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for ws in (a, b)]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    told = [err for _out, err in outs if TAKEN in err]
    assert len(told) == 1, outs
    assert sum("as shared@2" in out for out, _err in outs) == 1, outs
    listing = subprocess.run([*cli, "remote", "show", "team", "--json"], env=env, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    assert sorted(v["version"] for v in json.loads(listing)) == [1, 2]
    c = init_repository(tmp_path / "repo-c")
    try:
        import_paths(c, [_source(tmp_path / "src-c", 3)], "shared", message="c")
    finally:
        c.close()
    push_c = [*cli, "--repo", str(tmp_path / "repo-c"), "push", "shared@1", "team", "--exact"]
    refused = subprocess.run(push_c, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "modelmanager: error: the remote already has shared@1 from another repository; without "
        "--exact it is pushed under the next free number"
    ]


def test_the_lease_setting_is_kept_and_used(endpoint: str, tmp_path: Path) -> None:
    env = {**subprocess_env(tmp_path), **TEST_KEYS}
    url = f"s3://{ATOMIC}/setting"
    subprocess.run([sys.executable, "-m", "modelmanager", "remote", "add", "team", url,
                    "--endpoint", endpoint, "--no-conditional-writes"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    add_remote("plain", url, endpoint=endpoint)
    assert [(r.name, r.conditional_writes) for r in list_remotes()] == [
        ("plain", True),
        ("team", False),
    ]
    saved = json.loads((tmp_path / "data" / "remotes.json").read_text())["remotes"]
    assert [("conditional_writes" in r) for r in saved] == [True, False]  # only when not default
    for name, atomic in (("team", False), ("plain", True)):
        blobs = open_remote(name).blobs
        assert isinstance(blobs, FsspecBlobStore)
        assert blobs.conditional_writes() is atomic  # moto honours If-None-Match: probed
