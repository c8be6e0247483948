"""Labels pushed and pulled with their journal: on a loopback S3 API (moto) and a shared folder.

Two repositories share versions through a remote and move ``prod`` differently: the newer move
wins on both sides and the conflict is told with who and when; ``keep_local`` keeps ours; the
journals end up equal everywhere, in each side's own numbers; a fresh repository gets every
label and its whole journal (``label log`` in a child process shows it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moto")
pytest.importorskip("s3fs")

from modelmanager.core.remote.journals import JournalConflict, label_entries
from modelmanager.services import Workspace, init_repository
from modelmanager.services.history import set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.remotes import RemoteSpec, open_remote, pull, push
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, write_safetensors
from tests.support.s3 import TEST_KEYS
from tests.support.s3_atomic import ATOMIC, serialized_moto_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serialized_moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=["s3", "folder"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteSpec:
    if request.param == "folder":
        return RemoteSpec("team", f"file://{tmp_path / 'shared'}")
    url: str = request.getfixturevalue("endpoint")
    return RemoteSpec("team", f"s3://{ATOMIC}/{request.node.name}", endpoint=url)


def _source(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (32, 64)) for i in range(2)}
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(f'{{"seed": {seed}}}')
    return folder


def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """Who the journal says moves a label next (it reads the login name)."""
    monkeypatch.setenv("LOGNAME", user)


def _repo(tmp_path: Path, name: str) -> Workspace:
    return init_repository(tmp_path / name, chunk_size=64 * 1024, group_size=4096)


@pytest.fixture
def team(tmp_path: Path, spec: RemoteSpec, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[tuple[Workspace, Workspace]]:  # fmt: skip
    """A and B holding the same tiny@1..3 through the remote, with prod on 1 on every side."""
    a, b = _repo(tmp_path, "a"), _repo(tmp_path, "b")
    try:
        _as(monkeypatch, "carol")
        for seed in (1, 2, 3):
            import_paths(a, [_source(tmp_path / f"src{seed}", seed)], "tiny", message=str(seed))
        set_label(a, "tiny@1", "prod")
        remote = open_remote(spec)
        for n in (1, 2, 3):
            push(a, f"tiny@{n}", remote)
            pull(b, remote, f"tiny@{n}")
        assert b.repo.read_labels("tiny") == {"prod": 1}
        yield a, b
    finally:
        a.close()
        b.close()


def _keys(entries: dict[str, dict[str, object]]) -> set[str]:
    return {k.rsplit("/", 1)[-1] for k in entries}


def test_the_newer_move_wins_on_both_sides_and_the_conflict_says_who_and_when(
    team: tuple[Workspace, Workspace], spec: RemoteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = team
    _as(monkeypatch, "alice")
    set_label(a, "tiny@3", "prod")  # the older move
    _as(monkeypatch, "bob")
    set_label(b, "tiny@2", "prod")  # the newer one
    remote = open_remote(spec)
    first = push(a, "tiny@3", remote)  # only A moved since they agreed: no conflict
    assert (first.labels, first.label_conflicts) == (("prod",), ())
    assert remote.read_labels("tiny") == {"prod": 3}
    second = push(b, "tiny@2", remote)  # both moved: B's is newer and wins
    [conflict] = second.label_conflicts
    assert isinstance(conflict, JournalConflict)
    assert (conflict.label, conflict.here, conflict.remote, conflict.kept) == ("prod", 2, 3, "here")
    text = str(conflict)
    assert text.startswith("prod: here -> 2 (bob@")
    assert ", remote -> 3 (alice@" in text
    assert text.endswith("; kept the newer")
    assert b.repo.label_log("tiny")[-1]["user"] == "bob"
    when = str(b.repo.label_log("tiny")[-1]["time"])[11:16]
    assert f"{when}), remote" in text  # the time of B's move, as HH:MM
    assert second.labels == ("prod",)
    assert remote.read_labels("tiny") == {"prod": 2}
    assert b.repo.read_labels("tiny") == {"prod": 2}
    back = pull(a, remote, "tiny@3")  # A: only the remote moved since; B's move comes in
    assert (back.labels, back.label_conflicts) == (("prod",), ())
    assert a.repo.read_labels("tiny") == {"prod": 2}
    assert {v.seq: v.labels for v in a.catalog.versions("tiny")}[2] == ("prod",)
    # every move is on every side, the same records under the same keys
    there = label_entries(remote, "tiny")
    assert len(there) == 3
    assert _keys(label_entries(a.repo, "tiny")) == _keys(there) == _keys(
        label_entries(b.repo, "tiny"))  # fmt: skip
    assert [e["user"] for e in a.repo.label_log("tiny")] == ["carol", "alice", "bob"]
    assert a.repo.label_log("tiny") == b.repo.label_log("tiny")
    for ws in (a, b):
        assert ws.repo.metadata_problems() == []  # each label agrees with its journal
    again = push(a, "tiny@3", remote)  # settled: nothing left to say
    assert (again.labels, again.label_conflicts, again.labels_back) == ((), (), ())


def test_keep_local_keeps_ours_on_both_sides_even_when_older(
    team: tuple[Workspace, Workspace], spec: RemoteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = team
    _as(monkeypatch, "bob")
    set_label(b, "tiny@2", "prod")  # the older move
    _as(monkeypatch, "alice")
    set_label(a, "tiny@3", "prod")  # the newer one
    remote = open_remote(spec)
    push(a, "tiny@3", remote)
    _as(monkeypatch, "bob")
    kept = push(b, "tiny@2", remote, keep_local=True)
    [conflict] = kept.label_conflicts
    assert isinstance(conflict, JournalConflict)
    assert str(conflict).endswith("; kept yours (--keep-local)")
    assert (conflict.here, conflict.remote, conflict.kept) == (2, 3, "here")
    assert b.repo.read_labels("tiny") == {"prod": 2}
    assert remote.read_labels("tiny") == {"prod": 2}
    # without it, the same push would have taken A's newer move: the decision is a new entry
    assert [(e["user"], e["new"]) for e in b.repo.label_log("tiny")][-2:] == [
        ("alice", 3), ("bob", 2)]  # fmt: skip
    pull(a, remote, "tiny@2")
    assert a.repo.read_labels("tiny") == {"prod": 2}
    assert a.repo.label_log("tiny") == b.repo.label_log("tiny")
    assert a.repo.metadata_problems() == []


def test_a_label_on_a_renumbered_version_names_the_same_version_on_the_other_side(
    tmp_path: Path, spec: RemoteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _repo(tmp_path, "a"), _repo(tmp_path, "b")
    try:
        remote = open_remote(spec)
        import_paths(a, [_source(tmp_path / "src-a", 1)], "tiny", message="a")
        push(a, "tiny@1", remote)
        import_paths(b, [_source(tmp_path / "src-b", 2)], "tiny", message="b")
        set_label(b, "tiny@1", "prod")
        mine = push(b, "tiny@1", remote)  # B's tiny@1 is the remote's tiny@2
        assert (mine.stored_ref, mine.labels) == ("tiny@2", ("prod",))
        assert remote.read_labels("tiny") == {"prod": 2}
        [entry] = label_entries(remote, "tiny").values()
        assert (entry["old"], entry["new"]) == (None, 2)  # recorded in the remote's numbers
        pull(a, remote, "tiny@2")  # comes into A as tiny@2 as well (A's 1 is A's own)
        set_label(a, "tiny@1", "rc")
        _as(monkeypatch, "alice")
        set_label(a, "tiny@1", "prod")  # A moves prod off B's version, onto A's own
        push(a, "tiny@1", remote)
        assert remote.read_labels("tiny") == {"prod": 1, "rc": 1}
        back = pull(b, remote, "tiny@2")  # the remote's @2 is B's own @1
        assert back.stored_ref == "tiny@1"
        assert b.repo.read_labels("tiny") == {"prod": 1}  # A's move waits for A's version
        pull(b, remote, "tiny@1")  # A's version comes in as B's @2: prod and rc follow it
        assert b.repo.read_labels("tiny") == {"prod": 2, "rc": 2}
        assert b.repo.resolve("tiny@prod").message == "a"
        assert [(e["label"], e["old"], e["new"]) for e in b.repo.label_log("tiny")] == [
            ("prod", None, 1), ("rc", None, 2), ("prod", 1, 2)]  # in B's numbers  # fmt: skip
        assert b.repo.metadata_problems() == []
    finally:
        a.close()
        b.close()


def test_a_fresh_repository_gets_every_label_and_its_whole_journal(
    team: tuple[Workspace, Workspace], spec: RemoteSpec, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    a, _b = team
    _as(monkeypatch, "alice")
    set_label(a, "tiny@2", "prod")
    set_label(a, "tiny@3", "rc")
    set_label(a, "tiny@3", "prod")
    push(a, "tiny@1", open_remote(spec))
    env = subprocess_env(tmp_path)
    fresh = tmp_path / "fresh"

    def mm(*args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(fresh), *args],
                             env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 0, run.stderr
        return run.stdout

    mm("init", "--chunk-size", "64K", "--group-size", "4K")
    args = ["--endpoint", spec.endpoint] if spec.endpoint else []
    mm("remote", "add", "team", spec.url, *args)
    for n in (1, 2, 3):
        mm("pull", "team", f"tiny@{n}")
    log = json.loads(mm("label", "log", "tiny", "--json"))
    assert log == [{k: e.get(k) for k in ("time", "label", "old", "new", "why", "host", "user")}
                   for e in a.repo.label_log("tiny")]  # fmt: skip
    assert [(e["label"], e["new"], e["user"]) for e in log] == [
        ("prod", 1, "carol"),
        ("prod", 2, "alice"),
        ("rc", 3, "alice"),
        ("prod", 3, "alice"),
    ]
    assert "prod" in mm("ls")
    mm("verify")  # exit 0: every label agrees with its journal


def test_a_remote_label_left_off_its_journal_is_set_from_it_again(
    team: tuple[Workspace, Workspace], spec: RemoteSpec
) -> None:
    a, _b = team
    remote = open_remote(spec)
    remote.write_label("tiny", "prod", 3, 1)  # two racing pushes: the last label write lost
    healed = push(a, "tiny@2", remote)
    assert (healed.labels, healed.label_conflicts) == (("prod",), ())
    assert remote.read_labels("tiny") == {"prod": 1}  # what every journal says
