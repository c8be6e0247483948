"""Metadata records are sealed, kept on every device, healed from a copy and recoverable.

These drive the real repository on real folders: every byte of every metadata file flipped,
main deleted and rebuilt from its devices, a format-1 repository upgraded in place.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from modelmanager.core.placement import IDENTITY_FILE, MAIN
from modelmanager.core.repo.changes import EVERYTHING, pending_models, read_log, write_log
from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.repo.recovery import recover
from modelmanager.core.repo.replicas import ReplicatedRecords
from modelmanager.core.repo.repository import Repository
from modelmanager.core.repo.versions import manifest_key
from modelmanager.errors import IntegrityError
from modelmanager.services import Workspace, init_repository, open_workspace
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import remove_versions, set_label
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import verify
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import repair
from tests.support.builders import (
    chunk_sized_model,
    tree_bytes,
)

CHUNK = 4096


def _model(folder: Path, seed: int, tensors: int = 3) -> Path:
    return chunk_sized_model(folder, seed, tensors, CHUNK)


def _small_repository(tmp_path: Path, devices: int = 1) -> tuple[Workspace, dict[str, Path]]:
    """Two models, three versions (one removed), two labels, on main and ``devices`` more."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    for i in range(devices):
        add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
    sources = {}
    for seed, (name, ref) in enumerate([("m", "m@1"), ("m", "m@2"), ("n", "n@1"), ("m", "m@3")]):
        sources[ref] = _model(tmp_path / f"src{seed}", seed)
        import_paths(ws, [sources[ref]], name)
    set_label(ws, "m@2", "prod")
    set_label(ws, "n@1", "prod")
    remove_versions(ws, ["m@3"])
    del sources["m@3"]
    return ws, sources


def _exports_exactly(ws: Workspace, sources: dict[str, Path], out: Path) -> None:
    for ref, src in sources.items():
        export_ref(ws, ref, out / ref, force=True)
        assert tree_bytes(out / ref) == tree_bytes(src), ref


def _metadata_files(root: Path) -> list[Path]:
    files = [root / n for n in ("config.json", "devices.json", "policy.json")]
    return files + sorted(p for d in ("models", "journal") for p in (root / d).rglob("*.json"))


def test_a_sealed_record_finds_every_single_bit_and_byte_change() -> None:
    body = seal({"version": 3, "set": "2026-11-23T18:00:00.000000Z", "previous": None})
    assert unseal(body, "x") == {"version": 3, "set": "2026-11-23T18:00:00.000000Z",
                                 "previous": None}  # fmt: skip
    for i in range(len(body)):
        for mask in (0x01, 0x20, 0xFF):
            flipped = bytearray(body)
            flipped[i] ^= mask
            with pytest.raises(IntegrityError, match="damaged record"):
                unseal(bytes(flipped), "x")
    with pytest.raises(IntegrityError, match="no checksum"):
        unseal(b'{"version":3}', "x")
    assert unseal(b'{"version": 3}', "x", legacy=True) == {"version": 3}


def test_every_byte_flip_of_every_metadata_file_is_found_named_and_healed(
    tmp_path: Path,
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    add_device(ws, tmp_path / "dev0", name="d0")
    sources = {"m@2": _model(tmp_path / "src2", 2, tensors=1)}
    import_paths(ws, [_model(tmp_path / "src1", 1, tensors=1)], "m")
    import_paths(ws, [sources["m@2"]], "m", labels=["prod"])
    remove_versions(ws, ["m@1"])
    root = ws.repo.root
    files = [*_metadata_files(root), tmp_path / "dev0" / IDENTITY_FILE]
    kinds = {p.name if p.parent == root else p.parent.name for p in files}
    assert {"versions", "labels", "removed", "config.json", "devices.json"} <= kinds
    flips = 0
    for path in files:
        original = path.read_bytes()
        for i in range(len(original)):
            flipped = bytearray(original)
            flipped[i] ^= 0x01
            path.write_bytes(bytes(flipped))
            if flips % 50 == 0:  # the commands themselves, on a sample (each takes a while)
                ws = open_workspace(root)
                report = verify(ws)
                assert not report.ok
                # (a damaged device identity also makes that device's pieces unreachable)
                assert str(path) in [p.subject for p in report.problems], (path, i)
                assert repair(ws).ok
                ws.close()
            else:  # the very checks verify and repair run on metadata
                repo = Repository.open(root)
                problems = repo.metadata_problems()
                assert [p.path for p in problems] == [str(path)], (path, i)
                with repo.writer():
                    assert repo.sync_replicas() == []
            assert path.read_bytes() == original, (path, i)
            flips += 1
    assert flips == sum(len(p.read_bytes()) for p in files) > 2500
    assert Repository.open(root).metadata_problems(copies=True) == []
    _exports_exactly(open_workspace(root), sources, tmp_path / "out")


def test_deleted_records_on_main_are_read_from_a_copy_and_rewritten(tmp_path: Path) -> None:
    ws, sources = _small_repository(tmp_path)
    root = ws.repo.root
    for name in ("config.json", "devices.json", "policy.json"):
        (root / name).unlink()
    shutil.rmtree(root / "models")
    repo = Repository.open(root)
    assert repo.version_numbers("m") == [1, 2]
    assert repo.read_labels("n") == {"prod": 1}
    assert len(repo.metadata_problems()) == 3 + len(
        list((tmp_path / "dev0/meta/models").rglob("*.json"))
    )
    with repo.writer():
        assert repo.sync_replicas() == []
    assert repo.metadata_problems(copies=True) == []
    _exports_exactly(open_workspace(root), sources, tmp_path / "out")


def test_a_record_is_read_from_the_primary_alone_while_it_checks(tmp_path: Path) -> None:
    """Reading a manifest reads one copy, not one per device (a catalog rebuild reads every
    manifest); a primary that fails its check is passed over for the latest intact copy."""
    ws, _sources = _small_repository(tmp_path, devices=2)
    repo = Repository.open(ws.repo.root)
    records = repo.records
    assert isinstance(records, ReplicatedRecords)
    assert len(records.copies) == 4
    read: list[str] = []
    for copy in records.copies:
        get = copy.store.get
        copy.store.get = (  # type: ignore[method-assign]
            lambda key, _get=get, _name=copy.name: read.append(_name) or _get(key)
        )
    key = manifest_key("m", 2)
    intact = repo.read_manifest_key(key)
    assert read == [MAIN]
    read.clear()
    primary = ws.repo.root / key
    body = bytearray(primary.read_bytes())
    body[len(body) // 2] ^= 0x20
    primary.write_bytes(bytes(body))
    assert repo.read_manifest_key(key) == intact
    assert read == [MAIN, "d0", "d1"]  # every replica holds manifests; the latest wins


def test_a_copy_left_on_a_device_that_was_away_brings_nothing_back(tmp_path: Path) -> None:
    """A version removed and a label dropped while a device was offline stay removed when the
    device comes back, even with main's records lost."""
    ws, _sources = _small_repository(tmp_path)
    set_device(ws, "d0", state="offline")
    remove_versions(ws, ["m@1"])
    from modelmanager.services.history import remove_label

    remove_label(ws, "n", "prod")
    set_device(ws, "d0", state="online")
    repo = Repository.open(ws.repo.root)
    assert repo.version_numbers("m") == [2]
    assert repo.read_labels("n") == {}
    assert repo.metadata_problems(copies=True) == []  # coming back online resynced it


def test_recover_rebuilds_main_from_its_devices_after_main_and_two_devices_are_lost(
    tmp_path: Path,
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    set_device(ws, "main", state="offline")
    roots = [tmp_path / f"dev{i}" for i in range(6)]
    for i, r in enumerate(roots):
        add_device(ws, r, name=f"d{i}")
    set_policy(ws, "ec=4+2")
    sources = {}
    for seed, ref in enumerate(["m@1", "m@2", "n@1"]):
        sources[ref] = _model(tmp_path / f"src{seed}", seed)
        import_paths(ws, [sources[ref]], ref.split("@")[0])
    set_label(ws, "m@1", "stable")
    shutil.rmtree(ws.repo.root)
    for lost in (roots[1], roots[4]):
        shutil.rmtree(lost)
    survivors = [r for r in roots if r.exists()]

    done = recover(tmp_path / "new", survivors)
    assert sorted(done.found) == ["d0", "d2", "d3", "d5"]
    assert sorted(done.offline) == ["d1", "d4"]
    assert done.damaged == ()
    ws2 = open_workspace(tmp_path / "new")
    assert ws2.repo.version_numbers("m") == [1, 2]
    assert ws2.repo.read_labels("m") == {"stable": 1}
    assert str(ws2.repo.policies.default) == "ec=4+2"
    assert ws2.repo.metadata_problems(copies=True) == []
    _exports_exactly(ws2, sources, tmp_path / "out")


def test_a_format_1_repository_is_upgraded_in_place(tmp_path: Path) -> None:
    """A repository as the previous release wrote it (unsealed records, main only) opens,
    is sealed and replicated, and gives back every version exactly."""
    ws, sources = _small_repository(tmp_path)
    root = ws.repo.root
    for journal in [root / "journal", *(root / "models").glob("*/journal")]:
        shutil.rmtree(journal)  # format 1 had no journals
    for path in [*_metadata_files(root), tmp_path / "dev0" / IDENTITY_FILE]:
        doc = unseal(path.read_bytes(), str(path))
        doc.pop("written", None)
        if path.name == "config.json":
            doc["version"] = 1
        path.write_text(json.dumps(doc, indent=2))
    shutil.rmtree(root / "meta")
    shutil.rmtree(tmp_path / "dev0" / "meta")
    repo = Repository.open(root)
    assert not repo.legacy
    assert json.loads((root / "config.json").read_bytes())["version"] == 2
    for path in _metadata_files(root):
        unseal(path.read_bytes(), str(path))  # sealed now
    assert repo.metadata_problems(copies=True) == []
    assert (tmp_path / "dev0" / "meta" / "models").is_dir()
    _exports_exactly(open_workspace(root), sources, tmp_path / "out")


def test_label_moves_and_policy_changes_are_journalled_and_a_label_off_its_journal_is_healed(
    tmp_path: Path,
) -> None:
    from modelmanager.services.history import remove_label

    ws, _sources = _small_repository(tmp_path)
    set_label(ws, "m@1", "prod")  # a rollback is a journal entry like any move
    remove_label(ws, "n", "prod")
    set_policy(ws, "copies=2")
    moves = [(e["label"], e["old"], e["new"], e["why"]) for e in ws.repo.label_log("m")]
    assert moves == [("prod", None, 2, "set"), ("prod", 2, 1, "set")]
    assert [(e["old"], e["new"]) for e in ws.repo.label_log("n")] == [(None, 1), (1, None)]
    assert all(e["user"] and e["host"] and e["time"] for e in ws.repo.label_log("m"))
    policy = [e for e in ws.repo.repository_log() if e["kind"] == "policy"][-1]
    assert (policy["old"]["default"], policy["new"]["default"]) == ("copies=1", "copies=2")

    # A label record that says otherwise than its journal (a writer killed between the two,
    # or a record restored from an old backup) is reported and set back from the journal.
    label = ws.repo.root / "models" / "m" / "labels" / "prod.json"
    doc = unseal(label.read_bytes(), str(label))
    for copy in (label, tmp_path / "dev0" / "meta" / "models" / "m" / "labels" / "prod.json"):
        copy.write_bytes(seal(doc | {"version": 2}))
    repo = Repository.open(ws.repo.root)
    assert [p.what for p in repo.metadata_problems()] == [
        "label m@prod points at 2, its journal says 1"
    ]
    with repo.writer():
        repo.sync_replicas()
    assert repo.read_labels("m") == {"prod": 1}
    assert repo.metadata_problems(copies=True) == []


def test_a_label_move_left_half_done_by_a_killed_large_session_is_finished_by_the_next_writer(
    tmp_path: Path,
) -> None:
    """A session that touched very many models names "*" as pending: a label off its journal
    is then not damage; the next writer sets it from the journal and settles the record."""
    ws, _sources = _small_repository(tmp_path)
    root = ws.repo.root
    label = root / "models" / "m" / "labels" / "prod.json"
    doc = unseal(label.read_bytes(), str(label))
    set_label(ws, "m@1", "prod")  # journal: prod -> 1
    for copy in (label, tmp_path / "dev0" / "meta" / "models" / "m" / "labels" / "prod.json"):
        copy.write_bytes(seal(doc))  # its record as it was before: says 2
    log = read_log(root)
    assert log is not None
    write_log(root, replace(log, pending=(EVERYTHING,)))  # the killed session's record
    repo = Repository.open(root)
    assert repo.metadata_problems() == []  # a move being made, not damage
    assert repo.read_labels("m") == {"prod": 2}
    with repo.writer():
        assert repo.read_labels("m") == {"prod": 1}
    assert pending_models(root) == set()
    assert repo.metadata_problems(copies=True) == []
    # A killed session whose labels were all right is settled too: checked once, not by
    # every later writer (with "*", a read of every model's journal).
    write_log(root, replace(log, pending=(EVERYTHING,)))
    with repo.writer():
        pass
    assert pending_models(root) == set()
    # Without a pending record the same disagreement is damage: reported, refused, repaired.
    for copy in (label, tmp_path / "dev0" / "meta" / "models" / "m" / "labels" / "prod.json"):
        copy.write_bytes(seal(doc))
    assert [p.what for p in repo.metadata_problems()] == [
        "label m@prod points at 2, its journal says 1"
    ]


def test_a_repository_written_by_the_previous_release_is_upgraded_in_place(
    tmp_path: Path,
) -> None:
    """tests/data/format1 was written by ModelManager 0.1.0 (format 1): it opens, is sealed,
    keeps every version, label and removed number, and takes new versions."""
    data = Path(__file__).parent.parent / "data" / "format1"
    shutil.copytree(data / "repo", tmp_path / "repo")
    before = (tmp_path / "repo" / "config.json").read_bytes()
    assert json.loads(before)["version"] == 1
    ws = open_workspace(tmp_path / "repo")
    assert json.loads((tmp_path / "repo" / "config.json").read_bytes())["version"] == 2
    assert ws.repo.model_names() == ["org/tiny", "other"]
    assert ws.repo.version_numbers("other") == [2]
    assert ws.repo.removed_numbers("other") == [1]
    assert ws.repo.read_labels("org/tiny") == {"prod": 2, "stable": 1}
    assert ws.repo.metadata_problems(copies=True) == []
    _exports_exactly(ws, {"org/tiny@1": data / "src1", "org/tiny@2": data / "src2",
                          "other@2": data / "src2"}, tmp_path / "out")  # fmt: skip
    result = import_paths(ws, [data / "src1"], "other")
    assert result.manifest.seq == 3  # the removed number 1 stays taken
    ws.close()
