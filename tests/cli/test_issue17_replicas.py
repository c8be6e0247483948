"""Metadata copies through the real command line: one flipped byte in each kind of metadata
file (main's records, main's second copies, a device's copies, a device identity) is named by
``verify`` (exit 1) and healed by ``repair``; ``scrub`` names a device's copy that is missing,
damaged or stale, and ``repair`` rewrites it. Every version still exports byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.core.placement import IDENTITY_FILE
from modelmanager.services import init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.history import remove_versions, set_label
from modelmanager.services.importing import import_paths
from tests.support.builders import random_weights, tree_bytes, write_safetensors
from tests.support.commands import run_mm

CHUNK = 4096


def _repository(tmp_path: Path) -> dict[str, Path]:
    """main and d0; m@1 removed, m@2 (prod, moved once) and n@1 kept: every record kind."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    add_device(ws, tmp_path / "dev0", name="d0")
    sources = {}
    for seed, ref in enumerate(["m@1", "m@2", "n@1", "m@3"]):
        rng = np.random.default_rng(seed)
        src = tmp_path / f"src{seed}"
        tensors = {f"t{i}": random_weights(rng, (CHUNK // 4,)) for i in range(3)}
        write_safetensors(src / "model.safetensors", tensors)
        import_paths(ws, [src], ref.split("@")[0])
        sources[ref] = src
    set_label(ws, "m@2", "prod")
    set_label(ws, "m@3", "prod")
    remove_versions(ws, ["m@1"])
    del sources["m@1"]
    ws.close()
    return sources


def _exports_exactly(tmp_path: Path, sources: dict[str, Path], tag: str) -> None:
    for ref, src in sources.items():
        out = tmp_path / tag / ref
        done = run_mm(tmp_path, "export", ref, str(out))
        assert done.returncode == 0, done.stderr
        assert tree_bytes(out) == tree_bytes(src), ref


def test_one_flip_in_each_kind_of_metadata_file_is_named_by_verify_and_healed_by_repair(
    tmp_path: Path,
) -> None:
    sources = _repository(tmp_path)
    repo, dev = tmp_path / "repo", tmp_path / "dev0"
    journal = sorted((repo / "journal").glob("*.json"))
    label_journal = sorted((repo / "models" / "m" / "journal").glob("*.json"))
    # the file, and what verify must call it
    files = {
        repo / "config.json": "repository config",
        repo / "devices.json": "device list",
        repo / "policy.json": "redundancy policy",
        repo / "models/m/versions/00000002.json": "manifest of m@2",
        repo / "models/m/labels/prod.json": "label m@prod",
        repo / "models/m/removed/00000001.json": "removal record of m@1",
        label_journal[-1]: "label journal entry of m",
        journal[-1]: "repository journal entry",
        repo / "meta/config.json": "repository config",  # main's second copies
        repo / "meta/policy.json": "redundancy policy",
        dev / "meta/models/n/versions/00000001.json": "manifest of n@1",  # the device's copies
        dev / "meta/models/m/labels/prod.json": "label m@prod",
        dev / "meta/devices.json": "device list",
        dev / IDENTITY_FILE: "identity of device d0",
    }
    for path, kind in files.items():
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        done = run_mm(tmp_path, "verify")
        assert done.returncode == 1, (kind, done.stdout, done.stderr)
        named = [line for line in done.stderr.splitlines() if str(path) in line]
        assert named, (kind, done.stderr)
        assert kind in named[0], (kind, named)
        assert "Traceback" not in done.stderr
        done = run_mm(tmp_path, "repair")
        assert done.returncode == 0, (kind, done.stdout, done.stderr)
        assert path.read_bytes() == original, kind
        assert run_mm(tmp_path, "verify").returncode == 0, kind
    _exports_exactly(tmp_path, sources, "out")
    assert "prod" in run_mm(tmp_path, "log", "m").stdout


def test_scrub_names_a_device_copy_that_is_missing_damaged_or_stale_and_repair_rewrites_it(
    tmp_path: Path,
) -> None:
    sources = _repository(tmp_path)
    meta = tmp_path / "dev0" / "meta"
    label = meta / "models/m/labels/prod.json"
    before_move = label.read_bytes()  # prod -> m@3: the copy as it was
    assert run_mm(tmp_path, "label", "m@2", "prod").returncode == 0  # a rollback
    moved = label.read_bytes()
    assert moved != before_move
    label.write_bytes(before_move)  # stale: an older record, intact
    manifest = meta / "models/n/versions/00000001.json"
    good_manifest = manifest.read_bytes()
    manifest.write_bytes(good_manifest.replace(b'"n"', b'"N"', 1))  # damaged
    policy = meta / "policy.json"
    good_policy = policy.read_bytes()
    policy.unlink()  # missing

    done = run_mm(tmp_path, "scrub")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 metadata copies to rewrite" in done.stdout
    lines = done.stderr.splitlines()
    for path, what in ((label, "stale"), (manifest, "damaged"), (policy, "missing")):
        assert [line for line in lines if f"{path}: {what}" in line and "the copy on d0" in line
                ], (path, what, done.stderr)  # fmt: skip
    # A damaged copy anywhere is doubt enough: gc refuses and names it (a stale or missing
    # copy alone would not stop it).
    done = run_mm(tmp_path, "gc")
    assert done.returncode == 1, done.stdout + done.stderr
    assert str(manifest) in done.stderr

    done = run_mm(tmp_path, "repair")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (label.read_bytes(), manifest.read_bytes(), policy.read_bytes()) == (
        moved, good_manifest, good_policy)  # fmt: skip
    done = run_mm(tmp_path, "scrub")
    assert done.returncode == 0, done.stdout + done.stderr
    log = run_mm(tmp_path, "label", "log", "m").stdout.splitlines()
    assert [line.split()[2:5] for line in log[1:]] == [["prod", "-", "2"], ["prod", "2", "3"],
                                                       ["prod", "3", "2"]]  # fmt: skip
    _exports_exactly(tmp_path, sources, "out")


def _pieces(tmp_path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in (tmp_path / "repo", tmp_path / "dev0")
            for folder in ("chunks", "fragments") for p in (root / folder).rglob("*")
            if p.is_file()}  # fmt: skip


def test_with_no_intact_copy_of_the_policy_nothing_runs_on_a_guess(tmp_path: Path) -> None:
    """Every copy of policy.json damaged: a guessed (weaker) policy would make repair delete
    good copies, so every command that relies on it stops in one line; one intact copy put
    back anywhere is enough for repair to heal the rest."""
    sources = _repository(tmp_path)
    assert run_mm(tmp_path, "policy", "set", "copies=2").returncode == 0  # main and d0 each
    copies = [tmp_path / "repo/policy.json", tmp_path / "repo/meta/policy.json",
              tmp_path / "dev0/meta/policy.json"]  # fmt: skip
    good = copies[2].read_bytes()
    assert b'"default":"copies=2"' in good
    for path in copies:  # lowered to one copy by a flipped byte: well-formed, seal broken
        path.write_bytes(good.replace(b"copies=2", b"copies=1"))
    pieces = _pieces(tmp_path)
    for command in (["gc"], ["rm", "m@2", "--force"], ["repair"], ["rebalance"], ["verify"]):
        done = run_mm(tmp_path, *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (command, done.stderr)
        assert "policy" in lines[0], (command, lines[0])
    assert _pieces(tmp_path) == pieces
    copies[2].write_bytes(good)  # the device's copy restored (from a backup, say)
    assert run_mm(tmp_path, "repair").returncode == 0
    assert all(path.read_bytes() == good for path in copies)
    assert run_mm(tmp_path, "verify").returncode == 0
    _exports_exactly(tmp_path, sources, "out")
