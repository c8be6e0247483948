"""Nothing destructive on doubt: a wrong repository id, a swapped or foreign disk, a lost device
list, metadata failing its check, chunks missing everywhere. Named after the damage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.placement import DEVICES_FILE, IDENTITY_FILE, write_identity
from modelmanager.core.repo.records import seal, unseal
from modelmanager.core.repo.versions import CONFIG_KEY
from modelmanager.errors import DoubtError, UserError
from modelmanager.services import Workspace, init_repository, open_workspace
from modelmanager.services.devices import add_device, remove_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import remove_versions
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, plan_gc
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import rebalance, repair, scrub
from tests.conftest import subprocess_env
from tests.support.builders import random_weights, tree_bytes, write_safetensors

CHUNK = 16 * 1024
DESTRUCTIVE = (["gc"], ["repair"], ["rm", "m@1"], ["rebalance"], ["device", "rm", "d0", "--force"])


def _model(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    write_safetensors(folder / "model.safetensors",
                      {f"t{i}": random_weights(rng, (CHUNK // 4,)) for i in range(6)})  # fmt: skip
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


def _cluster(tmp_path: Path) -> tuple[Workspace, list[Path], dict[int, Path]]:
    """Main (offline: metadata only) and two devices holding two versions of ``m``."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024)
    set_device(ws, "main", state="offline")
    roots = [tmp_path / "dev0", tmp_path / "dev1"]
    for i, root in enumerate(roots):
        add_device(ws, root, name=f"d{i}")
    sources = {n: _model(tmp_path / f"src{n}", n) for n in (1, 2)}
    for src in sources.values():
        import_paths(ws, [src], "m")
    return ws, roots, sources


def _files(roots: list[Path]) -> list[tuple[str, bytes]]:
    return sorted((str(p), p.read_bytes()) for r in roots for p in r.rglob("*") if p.is_file())


def _mm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelmanager", "--repo",
                           str(tmp_path / "repo"), *args], env=subprocess_env(tmp_path),
                          capture_output=True, text=True, check=False)  # fmt: skip


def _exports(ws: Workspace, tmp_path: Path, sources: dict[int, Path], tag: str) -> None:
    for n, src in sources.items():
        export_ref(ws, f"m@{n}", tmp_path / f"{tag}{n}")
        assert tree_bytes(tmp_path / f"{tag}{n}") == tree_bytes(src)


def _all_refuse(tmp_path: Path, *words: str) -> None:
    """Every destructive command exits nonzero with one line holding ``words``."""
    for args in DESTRUCTIVE:
        done = _mm(tmp_path, *args)
        assert done.returncode not in (0, 70), (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (args, done.stderr)
        for w in words:
            assert w in lines[0], (args, w, lines[0])


def test_a_flipped_digit_of_the_repository_id_deletes_nothing(tmp_path: Path) -> None:
    """A flipped digit fails config.json's seal: nothing destructive runs, and repair (which
    restores metadata from its copies) puts the right id back."""
    ws, roots, sources = _cluster(tmp_path)
    config = tmp_path / "repo" / CONFIG_KEY
    good = config.read_bytes()
    wrong = ws.repo.config.id[:-1] + ("0" if ws.repo.config.id[-1] != "0" else "1")
    config.write_bytes(good.replace(ws.repo.config.id.encode(), wrong.encode()))
    before = _files(roots)
    for args in DESTRUCTIVE:
        if args != ["repair"]:
            done = _mm(tmp_path, *args)
            assert done.returncode not in (0, 70), (args, done.stdout, done.stderr)
            assert "config.json" in done.stderr
    assert _files(roots) == before
    done = _mm(tmp_path, "repair")
    assert done.returncode == 0, done.stderr
    assert config.read_bytes() == good
    assert _files(roots) == before
    ws = open_workspace(tmp_path / "repo")
    assert ws.repo.version_numbers("m") == [1, 2]
    _exports(ws, tmp_path, sources, "out")
    ws.close()


def test_a_wrong_repository_id_with_a_valid_seal_deletes_nothing(tmp_path: Path) -> None:
    """Both copies of config.json on main replaced by a well-formed record with another id
    (restored from the wrong backup): the devices disagree, so every destructive command,
    repair included, refuses and names config.json."""
    ws, roots, sources = _cluster(tmp_path)
    good = (tmp_path / "repo" / CONFIG_KEY).read_bytes()
    doc = unseal(good, CONFIG_KEY)
    forged = seal(doc | {"id": doc["id"][:-1] + ("0" if doc["id"][-1] != "0" else "1")})
    for copy in (tmp_path / "repo" / CONFIG_KEY, tmp_path / "repo" / "meta" / CONFIG_KEY):
        copy.write_bytes(forged)
    before = _files(roots)
    _all_refuse(tmp_path, "config.json")
    assert _files(roots) == before
    for copy in (tmp_path / "repo" / CONFIG_KEY, tmp_path / "repo" / "meta" / CONFIG_KEY):
        copy.write_bytes(good)
    ws = open_workspace(tmp_path / "repo")
    assert ws.repo.version_numbers("m") == [1, 2]
    _exports(ws, tmp_path, sources, "out")
    ws.close()


def test_a_disk_of_another_repository_mounted_as_a_device_deletes_nothing(
    tmp_path: Path,
) -> None:
    ws, roots, sources = _cluster(tmp_path)
    d1 = ws.repo.devices.get("d1")
    identity = (roots[1] / IDENTITY_FILE).read_bytes()
    write_identity(roots[1], d1, "0" * 8 + "-someone-else")
    before = _files(roots)
    _all_refuse(tmp_path, f"device d1 ({roots[1]})", "another repository", "nothing was changed")
    assert _files(roots) == before
    (roots[1] / IDENTITY_FILE).write_bytes(identity)
    _exports(ws, tmp_path, sources, "out")


def test_a_swapped_disk_is_named_and_nothing_deleted(tmp_path: Path) -> None:
    ws, roots, _sources = _cluster(tmp_path)
    write_identity(roots[1], ws.repo.devices.get("d0"), ws.repo.config.id)  # d0's disk at d1
    with pytest.raises(DoubtError, match=r"device d1 .* holds device d0 of this repository"):
        collect_garbage(ws)
    with pytest.raises(DoubtError, match="device d1"):
        remove_versions(ws, ["m@1"])
    assert ws.repo.version_numbers("m") == [1, 2]


def test_an_unmounted_device_stops_gc_rm_and_drain_but_not_its_own_removal(
    tmp_path: Path,
) -> None:
    ws, roots, sources = _cluster(tmp_path)
    roots[1].rename(tmp_path / "unplugged")
    for run in (
        lambda: collect_garbage(ws),
        lambda: remove_versions(ws, ["m@1"]),
        lambda: rebalance(ws),
        lambda: remove_device(ws, "d0", drain=True, force=False),
    ):
        with pytest.raises(DoubtError, match=r"device d1 .* is not mounted.*device offline d1"):
            run()
    assert ws.repo.version_numbers("m") == [1, 2]
    (tmp_path / "unplugged").rename(roots[1])
    _exports(ws, tmp_path, sources, "out")


def test_a_lost_device_list_never_advises_emptying_a_device(tmp_path: Path) -> None:
    ws, roots, sources = _cluster(tmp_path)
    ws.close()
    (tmp_path / "repo" / DEVICES_FILE).unlink()
    for root in roots:
        done = _mm(tmp_path, "device", "add", str(root))
        assert done.returncode == 0, done.stderr
        assert "empty" not in (done.stdout + done.stderr).lower()
        assert "Recognised" in done.stdout
    ws = open_workspace(tmp_path / "repo")
    assert sorted(d.name for d in ws.repo.devices.devices) == ["d0", "d1", "main"]
    _exports(ws, tmp_path, sources, "out")
    ws.close()


def test_a_device_folder_that_lost_its_identity_is_registered_again_not_emptied(
    tmp_path: Path,
) -> None:
    ws, roots, sources = _cluster(tmp_path)
    # copies=1: d1 holds the only copies, so forgetting it is refused unless confirmed.
    with pytest.raises(UserError, match="removing device d1 would lose data"):
        remove_device(ws, "d1", drain=False, force=True)
    remove_device(ws, "d1", drain=False, force=True, allow_loss=True)
    (roots[1] / IDENTITY_FILE).unlink()
    added = add_device(ws, roots[1], name="back")
    device, recognised = added.device, added.recognised
    assert recognised
    assert device.name == "back"
    assert scrub(ws).ok  # copies=1 over d0 and d1: d1's pieces count again
    _exports(ws, tmp_path, sources, "out")
    foreign = tmp_path / "foreign"
    (foreign / "chunks" / "ab").mkdir(parents=True)
    (foreign / "chunks" / "ab" / ("ab" + "1" * 62)).write_bytes(b"x")
    with pytest.raises(UserError) as caught:
        add_device(ws, foreign)
    assert "empty it" not in str(caught.value)
    assert "choose an empty or new folder" in str(caught.value)


def test_metadata_in_doubt_stops_every_deletion_and_repair_only_adds(tmp_path: Path) -> None:
    """Every copy of m@1's manifest damaged (no intact one to heal it from): nothing deletes,
    and repair, with a surplus copy and a corrupt piece in front of it, only adds."""
    ws, roots, _sources = _cluster(tmp_path)
    key = "models/m/versions/00000001.json"
    for copy in (tmp_path / "repo" / key, *(r / "meta" / key for r in roots)):
        body = bytearray(copy.read_bytes())
        body[len(body) // 2] ^= 0x01
        copy.write_bytes(bytes(body))
    # A surplus copy (copies=1: a second copy of an m@2 chunk) and a corrupt piece: repair
    # would delete both if it trusted the metadata.
    surplus, corrupt = sorted(ws.repo.resolve("m@2").chunk_ids())[:2]
    held = next(r for r in roots if (r / chunk_key(surplus)).is_file())
    other = roots[1] if held == roots[0] else roots[0]
    (other / chunk_key(surplus)).parent.mkdir(parents=True, exist_ok=True)
    (other / chunk_key(surplus)).write_bytes((held / chunk_key(surplus)).read_bytes())
    bad = next(r for r in roots if (r / chunk_key(corrupt)).is_file()) / chunk_key(corrupt)
    bad.write_bytes(bad.read_bytes()[:-1] + bytes([bad.read_bytes()[-1] ^ 0x10]))
    before = _files(roots)
    for run in (lambda: collect_garbage(ws), lambda: plan_gc(ws),
                lambda: remove_versions(ws, ["m@2"]), lambda: rebalance(ws),
                lambda: remove_device(ws, "d1", drain=False, force=True),
                lambda: set_policy(ws, "copies=2")):  # fmt: skip
        with pytest.raises(DoubtError, match=r"00000001.json: damaged manifest of m@1.*"
                           "modelmanager repair"):  # fmt: skip
            run()
    assert _files(roots) == before
    report = repair(ws)
    assert report.removed_pieces == 0
    assert "kept, not deleted" in report.held_back
    assert not report.ok
    after = dict(_files(roots))
    assert {k: after.get(k) for k, _v in before} == dict(before)  # nothing removed or changed
    assert ws.repo.version_numbers("m") == [1, 2]


def test_gc_refuses_when_needed_chunks_are_missing_everywhere(tmp_path: Path) -> None:
    ws, roots, sources = _cluster(tmp_path)
    victim = sorted(ws.repo.resolve("m@2").chunk_ids() - ws.repo.resolve("m@1").chunk_ids())[0]
    for root in roots:
        (root / chunk_key(victim)).unlink(missing_ok=True)
    garbage = roots[0] / chunk_key("cd" + "2" * 62)
    garbage.parent.mkdir(parents=True, exist_ok=True)
    garbage.write_bytes(b"unused")
    with pytest.raises(DoubtError, match=r"1 of the .* chunks the versions need are missing"):
        collect_garbage(ws)
    assert garbage.exists()
    _exports(ws, tmp_path, {1: sources[1]}, "out")
