"""Pinning a version hot (issue 20), on real device folders: hot copies, loads that read them
first, scrub, repair, gc and rm that know them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import modelmanager as mm
from modelmanager.core.chunks.store import hot_key
from modelmanager.core.codecs import CodecSettings
from modelmanager.core.ids import content_id
from modelmanager.core.jobs import JobContext
from modelmanager.core.repo.versions import utc_now
from modelmanager.errors import Cancelled, DoubtError, IntegrityError, UserError
from modelmanager.services import Workspace, init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.history import remove_versions
from modelmanager.services.hot_tier import apply_hot_tier, plan_hot_tier
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, stats
from modelmanager.services.pin_records import (
    DEFAULT_FILL_LIMIT,
    fill_limit,
    last_uses,
    note_use,
    pin_key,
    pins,
    release_pin,
    set_fill_limit,
)
from modelmanager.services.pinning import hot_bytes_of, pin, pin_summary, plan_pin, promote, unpin
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import repair, scrub
from tests.support.builders import random_weights, write_safetensors
from tests.support.mounts import small_tmpfs

CHUNK = 64 * 1024


def _source(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layer.{i}.weight": random_weights(rng, (64, 256)) for i in range(6)}
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text('{"architectures": ["Tiny"]}')
    return folder


def _warm_pair(tmp_path: Path) -> Workspace:
    """main (cold) plus two warm devices, under copies=2, holding nothing yet."""
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=1024,
                         codec=CodecSettings("zstd"))  # fmt: skip
    set_device(ws, "main", tier="cold")
    for i in range(2):
        add_device(ws, tmp_path / f"warm{i}", name=f"w{i}", tier="warm")
    set_policy(ws, "copies=2")
    return ws


def _workspace(tmp_path: Path) -> Workspace:
    """main (cold) plus two warm devices holding copies=2, and one hot device."""
    ws = _warm_pair(tmp_path)
    import_paths(ws, [_source(tmp_path / "src")], "m")
    import_paths(ws, [_source(tmp_path / "src2", seed=1)], "m")
    add_device(ws, tmp_path / "fast", name="fast", tier="hot")  # after: holds no policy piece
    return ws


def _chunk_ids(ws: Workspace, ref: str) -> dict[str, int]:
    m = ws.repo.resolve(ref)
    return {c.id: c.length for f in m.files for c in f.chunks}


def _hot_files(tmp_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (tmp_path / "fast" / "hot").rglob("*") if p.is_file()}


def test_pin_writes_one_plain_copy_of_each_chunk_on_the_hot_device(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    r = pin(ws, "m@1")
    assert r.device == "fast"
    assert r.written == r.chunks == len(_chunk_ids(ws, "m@1"))
    hot = _hot_files(tmp_path)
    assert set(hot) == set(_chunk_ids(ws, "m@1"))
    for cid, data in hot.items():  # raw bytes named by their hash, equal to the chunk's
        assert content_id(data) == cid
        assert data == ws.repo.chunks.get(cid, len(data))
    # The record is sealed and replicated like every record, on every device's meta/.
    key = pin_key("m", 1)
    assert ws.repo.records.read(key)["pinned"] is True
    for dev in ("warm0", "warm1", "fast"):
        assert (tmp_path / dev / "meta" / key).is_file()
    assert [p.ref for p in pins(ws.repo)] == ["m@1"]
    assert pin(ws, "m@1").written == 0  # pinning again reuses the copies
    assert stats(ws).hot_bytes == {"fast": sum(len(d) for d in hot.values())}
    per_device = {d.name: hot_bytes_of(ws.repo.chunks, d) for d in ws.repo.devices.devices}
    assert per_device == {"main": 0, "w0": 0, "w1": 0, "fast": sum(len(d) for d in hot.values())}
    # Hot copies never count toward the policy: scrub is clean, nothing under-replicated.
    assert scrub(ws).ok


def test_a_pinned_load_reads_only_hot_copies(tmp_path: Path) -> None:
    """Every policy piece of the version deleted: the load still returns the right tensors,
    so they came from the hot copies."""
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    expected = load_file(tmp_path / "src" / "model.safetensors")
    for cid in _chunk_ids(ws, "m@1"):
        for _device, path in ws.repo.chunks.piece_files(cid):
            path.unlink()
    got = mm.load("m@1", repo=tmp_path / "repo")
    assert set(got) == set(expected)
    for name, arr in expected.items():
        np.testing.assert_array_equal(got[name], arr)


def test_a_corrupt_hot_copy_is_reported_passed_over_and_dropped(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    cid = sorted(_chunk_ids(ws, "m@1"))[0]
    path = tmp_path / "fast" / hot_key(cid)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = scrub(ws)
    assert [(c.chunk, c.device, c.piece) for c in report.corrupt] == [(cid, "fast", hot_key(cid))]
    assert not report.missing
    assert not report.under_replicated
    # The load falls back to the policy's pieces and returns the right bytes.
    expected = load_file(tmp_path / "src" / "model.safetensors")
    got = mm.load("m@1", repo=tmp_path / "repo")
    for name, arr in expected.items():
        np.testing.assert_array_equal(got[name], arr)
    assert repair(ws).removed_pieces == 1
    assert not path.exists()
    assert scrub(ws).ok


def test_unpin_then_gc_removes_the_hot_copies(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    pin(ws, "m@2")
    unpin(ws, "m@1")
    assert [p.ref for p in pins(ws.repo)] == ["m@2"]
    assert ws.repo.records.read(pin_key("m", 1))["pinned"] is False  # a record, not a deletion
    only_1 = set(_chunk_ids(ws, "m@1")) - set(_chunk_ids(ws, "m@2"))
    assert only_1
    assert only_1 <= set(_hot_files(tmp_path))
    result = collect_garbage(ws)
    assert {c for _d, c, _n in result.plan.hot} == only_1
    assert set(_hot_files(tmp_path)) == set(_chunk_ids(ws, "m@2"))
    with pytest.raises(UserError, match="not pinned"):
        unpin(ws, "m@1")


def test_rm_of_a_pinned_version_leaves_no_hot_copy_after_gc(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    pin(ws, "m@2")
    remove_versions(ws, ["m@2"])
    assert pins(ws.repo) == []  # a pin of a removed version is none
    collect_garbage(ws)
    assert _hot_files(tmp_path) == {}


def test_gc_refuses_while_a_pin_record_is_damaged(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    unpin(ws, "m@1")
    for root in (tmp_path / "repo", *(tmp_path / d / "meta" for d in ("warm0", "warm1", "fast"))):
        (root / pin_key("m", 1)).write_bytes(b'{"pinned": true}')
    with pytest.raises((DoubtError, IntegrityError)):
        collect_garbage(ws)
    assert _hot_files(tmp_path)  # nothing deleted on doubt


def test_pin_without_a_hot_device_is_one_clear_refusal(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    set_device(ws, "fast", tier="cold")
    with pytest.raises(UserError, match="no online hot-tier device"):
        pin(ws, "m@1")
    assert pins(ws.repo) == []


def _cli(*args: str, repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelmanager", "--repo", str(repo), *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_device_ls_shows_each_devices_hot_bytes(tmp_path: Path) -> None:
    """``device ls`` counts the hot copies a pin wrote on the hot device, and nothing elsewhere."""
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    on_disk = sum(p.stat().st_size for p in (tmp_path / "fast" / "hot").rglob("*") if p.is_file())
    ws.close()
    listed = _cli("device", "ls", "--json", repo=tmp_path / "repo")
    hot = {d["name"]: d["hot_bytes"] for d in json.loads(listed.stdout)}
    assert on_disk > 0
    assert hot == {"main": 0, "w0": 0, "w1": 0, "fast": on_disk}
    table = _cli("device", "ls", repo=tmp_path / "repo").stdout.splitlines()
    assert table[0].split()[8] == "HOT"
    fast = next(line.split() for line in table if line.startswith("fast"))
    assert fast[8] != "-"


def test_cli_pin_list_unpin(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    repo = tmp_path / "repo"
    ws.close()
    done = _cli("pin", "m@1", repo=repo)
    assert done.returncode == 0, done.stderr
    assert "Pinned m@1 hot on fast" in done.stdout
    listed = _cli("pin", "--list", "--json", repo=repo)
    assert [p["version"] for p in json.loads(listed.stdout)["pins"]] == ["m@1"]
    assert _cli("unpin", "m@1", repo=repo).returncode == 0
    limit = _cli("pin", "--fill-limit", "0.5", "--json", repo=repo)
    assert json.loads(limit.stdout) == {"fill_limit": 0.5}, limit.stderr
    assert "Fill limit of hot devices: 50%" in _cli("pin", "--list", repo=repo).stdout
    bad = _cli("pin", "--fill-limit", "2", repo=repo)
    assert bad.returncode == 2
    assert "at most 1" in bad.stderr
    assert _cli("device", "set", "fast", "--tier", "cold", repo=repo).returncode == 0
    refused = _cli("pin", "m@1", repo=repo)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no online hot-tier device" in lines[0]


def test_gc_drops_hot_copies_on_a_device_moved_off_the_hot_tier(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    set_device(ws, "fast", tier="warm")  # loads no longer read there
    collect_garbage(ws)
    assert _hot_files(tmp_path) == {}
    set_device(ws, "fast", tier="hot")
    assert pin(ws, "m@1").written == len(_chunk_ids(ws, "m@1"))  # pinning again restores them


def test_export_of_a_pinned_version_reads_the_hot_copies(tmp_path: Path) -> None:
    """The file sink path (no buffer to read into): export still gets the bytes hot."""
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    for cid in _chunk_ids(ws, "m@1"):
        for _device, path in ws.repo.chunks.piece_files(cid):
            path.unlink()
    export_ref(ws, "m@1", tmp_path / "out")
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "src" / name).read_bytes()


def _tiny_hot_workspace(tmp_path: Path, hot: Path) -> Workspace:
    """main (cold) and two warm devices with copies=2 holding models a, b and c (about 390 KB
    each, no chunk shared), and ``hot`` (a small real file system) as the hot device."""
    ws = _warm_pair(tmp_path)
    for seed, name in enumerate("abc"):
        import_paths(ws, [_source(tmp_path / f"src-{name}", seed=seed)], name)
    add_device(ws, hot, name="fast", tier="hot")
    return ws


def _hot_on(folder: Path) -> set[str]:
    return {p.name for p in (folder / "hot").rglob("*") if p.is_file()}


def test_a_pin_past_the_fill_limit_demotes_the_least_recently_used(tmp_path: Path) -> None:
    """A 1 MiB hot device (a real tmpfs) holds two of the three versions under its 90 % fill
    limit: pinning the third demotes the one loaded least recently, whose policy pieces still
    load it; the one loaded after its pin stays hot."""
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        repo = tmp_path / "repo"
        assert fill_limit(ws.repo) == DEFAULT_FILL_LIMIT
        pin(ws, "a@1")
        pin(ws, "b@1")
        mm.load("a@1", repo=repo)  # a is used after b was pinned: b is the least recently used
        assert set(last_uses(ws.repo)) == {"a@1"}
        plan = plan_pin(ws.repo, "c@1")  # the preview: nothing done yet
        assert [d.ref for d in plan.demote] == ["b@1"]
        dry = _cli("pin", "c@1", "--dry-run", "--json", repo=repo)
        assert json.loads(dry.stdout)["demote"] == ["b@1"], dry.stderr
        text = _cli("pin", "c@1", "--dry-run", repo=repo).stdout
        assert "and demotes b@1 (least recently used)" in text
        only_b = (
            set(_chunk_ids(ws, "b@1")) - set(_chunk_ids(ws, "a@1")) - set(_chunk_ids(ws, "c@1"))
        )
        assert {c for c, _n in plan.drop} == only_b  # config.json's chunk is c's too: kept
        assert _hot_on(fast) == set(_chunk_ids(ws, "a@1")) | set(_chunk_ids(ws, "b@1"))
        pin(ws, "a@1")  # a's pin is renewed: c's plan as shown still holds
        with pytest.raises(DoubtError, match="not what was previewed"):
            pin(ws, "c@1", previewed=replace(plan, demote=()))
        r = pin(ws, "c@1", previewed=plan)
        assert r.demoted == ("b@1",)
        assert r.freed_bytes == sum(n for c, n in _chunk_ids(ws, "b@1").items() if c in only_b)
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "c@1"]
        record = ws.repo.records.read(pin_key("b", 1))
        assert record["pinned"] is False
        assert record["for"] == "c@1"
        assert _hot_on(fast) == set(_chunk_ids(ws, "a@1")) | set(_chunk_ids(ws, "c@1"))
        space = shutil.disk_usage(fast)
        assert space.used <= DEFAULT_FILL_LIMIT * space.total
        # b stays readable from its policy pieces, and every piece checks.
        expected = load_file(tmp_path / "src-b" / "model.safetensors")
        got = mm.load("b@1", repo=repo)
        for name, arr in expected.items():
            np.testing.assert_array_equal(got[name], arr)
        assert scrub(ws).ok


def test_a_promotion_never_demotes_a_version_pinned_explicitly_after_its_use(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        note_use(ws.repo, "c", 1)  # c loaded first...
        pin(ws, "a@1")  # ...then a and b pinned by the user
        pin(ws, "b@1")
        before = _hot_on(fast)
        with pytest.raises(UserError, match="do not fit device fast") as e:
            promote(ws, "c@1")
        assert "even after demoting 0 least recently used" in str(e.value)
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "b@1"]  # nothing was done
        assert _hot_on(fast) == before
        # An explicit pin of c is newer than both: it demotes the least recently used, a.
        assert pin(ws, "c@1").demoted == ("a@1",)
        assert pin_summary(ws.repo, "a", 1).startswith("not pinned (demoted ")
        assert pin_summary(ws.repo, "a", 1).endswith(" UTC for c@1)")
        n = len(_chunk_ids(ws, "c@1"))
        assert pin_summary(ws.repo, "c", 1).endswith(f"; {n} of {n} chunks hot ({n} on fast)")


def test_a_promotion_demotes_only_promotions_never_an_older_explicit_pin(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        pin(ws, "a@1")  # the user's, before any load
        note_use(ws.repo, "b", 1)
        promote(ws, "b@1")
        note_use(ws.repo, "c", 1)  # loaded after a's pin: still never demotes it
        assert promote(ws, "c@1").demoted == ("b@1",)
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "c@1"]
        assert _hot_on(fast) == set(_chunk_ids(ws, "a@1")) | set(_chunk_ids(ws, "c@1"))
        unpin(ws, "c@1")
        pin(ws, "b@1")  # b now the user's too: a load of c finds nothing it may demote
        note_use(ws.repo, "c", 1)
        with pytest.raises(UserError, match="do not fit"):
            promote(ws, "c@1")
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "b@1"]


def test_a_lower_fill_limit_is_kept_and_applies(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        pin(ws, "a@1")
        set_fill_limit(ws, 0.5)
        assert fill_limit(ws.repo) == 0.5
        assert pin(ws, "b@1").demoted == ("a@1",)  # both do not fit in half of 1 MiB
        with pytest.raises(UserError, match="above 0 and at most 1"):
            set_fill_limit(ws, 1.5)
        assert _hot_on(fast) == set(_chunk_ids(ws, "b@1"))


def _auto(ws: Workspace, model: str) -> bool:
    return ws.repo.records.read(pin_key(model, 1)).get("auto") is True


def test_the_hot_tier_job_promotes_recent_loads_and_demotes_the_least_recently_used(
    tmp_path: Path,
) -> None:
    """A 1 MiB hot device (a real tmpfs) holds two of the three versions under its fill limit:
    a is pinned by the user; the job promotes the latest load and leaves the older one cold;
    after another load it demotes the automatic promotion used least recently, never a."""
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        pin(ws, "a@1")
        note_use(ws.repo, "b", 1)
        note_use(ws.repo, "c", 1)  # c loaded last
        plan = plan_hot_tier(ws.repo)  # the preview: nothing done yet
        assert [m.ref for m in plan.promote] == ["c@1"]
        assert [m.ref for m in plan.left_out] == ["b@1"]
        assert plan.demote == ()
        only_c = set(_chunk_ids(ws, "c@1")) - set(_chunk_ids(ws, "a@1"))
        (dev,) = plan.devices
        assert {c for c, _n in dev.write} == only_c
        assert dev.write_bytes == plan.promote[0].write_bytes == sum(
            n for c, n in _chunk_ids(ws, "c@1").items() if c in only_c)  # fmt: skip
        assert _hot_on(fast) == set(_chunk_ids(ws, "a@1"))
        r = apply_hot_tier(ws, previewed=plan)
        assert (r.written, r.written_bytes) == (len(only_c), dev.write_bytes)
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "c@1"]
        assert _auto(ws, "c")  # a promotion, told from the user's pin
        assert not _auto(ws, "a")
        assert _hot_on(fast) == set(_chunk_ids(ws, "a@1")) | set(_chunk_ids(ws, "c@1"))
        assert pin_summary(ws.repo, "c", 1).startswith("promoted hot (loaded ")
        assert scrub(ws).ok
        # b is loaded again, now the most recent: c (automatic) goes, a (the user's) stays.
        note_use(ws.repo, "b", 1)
        plan = plan_hot_tier(ws.repo)
        assert [m.ref for m in plan.promote] == ["b@1"]
        assert [m.ref for m in plan.demote] == ["c@1"]
        assert plan.kept == ("a@1",)
        only_c = set(_chunk_ids(ws, "c@1")) - set(_chunk_ids(ws, "a@1"))
        only_c -= set(_chunk_ids(ws, "b@1"))
        assert {c for c, _n in plan.devices[0].drop} == only_c  # the shared config.json stays
        assert plan.demote[0].drop_bytes == plan.devices[0].drop_bytes
        r = apply_hot_tier(ws, previewed=plan)
        assert r.dropped_bytes == plan.devices[0].drop_bytes > 0
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "b@1"]
        record = ws.repo.records.read(pin_key("c", 1))
        assert (record["pinned"], record["for"]) == (False, "b@1")
        assert _hot_on(fast) == set(_chunk_ids(ws, "a@1")) | set(_chunk_ids(ws, "b@1"))
        space = shutil.disk_usage(fast)
        assert space.used <= DEFAULT_FILL_LIMIT * space.total
        assert not plan_hot_tier(ws.repo).changes_anything  # settled: a second run does nothing
        expected = load_file(tmp_path / "src-c" / "model.safetensors")
        got = mm.load("c@1", repo=tmp_path / "repo")  # from its policy pieces
        for name, arr in expected.items():
            np.testing.assert_array_equal(got[name], arr)
        assert scrub(ws).ok
        # That load makes c the most recent again: the next run would swap it back for b.
        assert [m.ref for m in plan_hot_tier(ws.repo).promote] == ["c@1"]


def test_the_hot_tier_job_never_demotes_an_explicit_pin(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        pin(ws, "a@1")
        pin(ws, "b@1")
        note_use(ws.repo, "c", 1)  # loaded after both pins
        before = _hot_on(fast)
        plan = plan_hot_tier(ws.repo)
        assert ([m.ref for m in plan.left_out], plan.promote, plan.demote) == (["c@1"], (), ())
        assert plan.kept == ("a@1", "b@1")
        apply_hot_tier(ws, previewed=plan)
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "b@1"]
        assert _hot_on(fast) == before


def test_the_hot_tier_job_refuses_a_plan_that_changed_since_its_preview(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        note_use(ws.repo, "a", 1)
        plan = plan_hot_tier(ws.repo)
        assert [m.ref for m in plan.promote] == ["a@1"]
        note_use(ws.repo, "b", 1)  # a load meanwhile: b now comes first
        with pytest.raises(DoubtError, match="changed since it was previewed"):
            apply_hot_tier(ws, previewed=plan)
        assert pins(ws.repo) == []
        assert _hot_on(fast) == set()
        # Loads older than the window are not recent: nothing to promote.
        assert plan_hot_tier(ws.repo, since="2999-01-01T00:00:00.000000Z").promote == ()


def test_rm_of_a_pinned_version_marks_its_pin_record_unpinned(tmp_path: Path) -> None:
    """rm calls release_pin for each version it removes; the hot-tier job sweeps any left."""
    ws = _workspace(tmp_path)
    pin(ws, "m@1")
    pin(ws, "m@2")
    remove_versions(ws, ["m@1", "m@2"])
    for seq in (1, 2):
        record = ws.repo.records.read(pin_key("m", seq))
        assert record["pinned"] is False
        assert "removed" in record
    with ws.repo.writer():
        assert not release_pin(ws.repo, "m", 1)  # once
        # A record an rm killed between the removal and the release left pinned.
        now = utc_now()
        ws.repo.records.write(pin_key("m", 2), {"version": 2, "pinned": True, "set": now,
                                                "written": now})  # fmt: skip
    plan = plan_hot_tier(ws.repo)
    assert plan.released == ("m@2",)
    apply_hot_tier(ws, previewed=plan)
    assert ws.repo.records.read(pin_key("m", 2))["pinned"] is False
    assert _hot_files(tmp_path) == {}  # the job dropped the hot copies no pin needs
    assert scrub(ws).ok


def test_cli_hot_tier_previews_then_applies(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        note_use(ws.repo, "b", 1)
        ws.close()
        repo = tmp_path / "repo"
        dry = _cli("hot-tier", "--dry-run", "--json", repo=repo)
        assert dry.returncode == 0, dry.stderr
        doc = json.loads(dry.stdout)
        assert [m["version"] for m in doc["promote"]] == ["b@1"]
        assert doc["devices"][0]["device"] == "fast"
        assert doc["devices"][0]["write_bytes"] == doc["promote"][0]["write_bytes"] > 0
        text = _cli("hot-tier", "--dry-run", repo=repo).stdout
        assert "Promote b@1 (loaded " in text
        assert f"fast: copy {doc['devices'][0]['write']} chunks (" in text  # bytes per device
        assert "Nothing was changed (dry run)." in text
        assert _hot_on(fast) == set()
        done = _cli("hot-tier", repo=repo)
        assert done.returncode == 0, done.stderr
        assert "Promoted b@1" in done.stdout
        listed = json.loads(_cli("pin", "--list", "--json", repo=repo).stdout)["pins"]
        assert [p["version"] for p in listed] == ["b@1"]
        assert len(_hot_on(fast)) == doc["devices"][0]["write"]
        assert "hot-tier" in _cli("pin", "--list", repo=repo).stdout  # who pinned it
        assert _cli("device", "set", "fast", "--tier", "cold", repo=repo).returncode == 0
        refused = _cli("hot-tier", "--dry-run", repo=repo)
        assert refused.returncode == 2
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "no online hot-tier device" in refused.stderr


def test_a_cancelled_hot_tier_run_leaves_no_pin_without_its_copies(tmp_path: Path) -> None:
    """Cancelled while writing the second promotion: the first is pinned with every copy,
    the second has no record (its copies so far are garbage the next run reuses)."""
    with small_tmpfs(tmp_path / "fast", "1m") as fast:
        ws = _tiny_hot_workspace(tmp_path, fast)
        note_use(ws.repo, "a", 1)
        note_use(ws.repo, "b", 1)  # b first, then a
        plan = plan_hot_tier(ws.repo)
        assert [m.ref for m in plan.promote] == ["b@1", "a@1"]
        first = plan.promote[0].write_bytes
        ctx = JobContext()

        def progress(done: int, _total: int, _text: str) -> None:
            if done > first:
                ctx.cancel()

        ctx.on_progress = progress
        with pytest.raises(Cancelled):
            apply_hot_tier(ws, previewed=plan, ctx=ctx)
        assert [p.ref for p in pins(ws.repo)] == ["b@1"]
        assert set(_chunk_ids(ws, "b@1")) <= _hot_on(fast)
        partial = _hot_on(fast) - set(_chunk_ids(ws, "b@1"))
        assert partial
        assert scrub(ws).ok
        again = plan_hot_tier(ws.repo)
        assert [m.ref for m in again.promote] == ["a@1"]
        assert again.promote[0].write_bytes == plan.promote[1].write_bytes - sum(
            n for c, n in _chunk_ids(ws, "a@1").items() if c in partial)  # fmt: skip
        apply_hot_tier(ws, previewed=again)
        assert [p.ref for p in pins(ws.repo)] == ["a@1", "b@1"]
        assert scrub(ws).ok


def test_the_hot_tier_spreads_hot_copies_over_two_small_hot_devices(tmp_path: Path) -> None:
    """Two 512 KiB hot devices (real tmpfs), neither able to hold two versions under its fill
    limit: two recent loads are promoted across both, the third is left cold, and each device
    ends under its own limit."""
    with (small_tmpfs(tmp_path / "fast", "512k") as fast,
          small_tmpfs(tmp_path / "fast2", "512k") as fast2):  # fmt: skip
        ws = _tiny_hot_workspace(tmp_path, fast)
        add_device(ws, fast2, name="fast2", tier="hot")
        for name in "abc":
            note_use(ws.repo, name, 1)
        plan = plan_hot_tier(ws.repo)
        assert [m.ref for m in plan.promote] == ["c@1", "b@1"]
        assert [m.ref for m in plan.left_out] == ["a@1"]
        assert sorted(d.device.name for d in plan.devices if d.write) == ["fast", "fast2"]
        apply_hot_tier(ws, previewed=plan)
        both = _hot_on(fast) | _hot_on(fast2)
        assert both == set(_chunk_ids(ws, "b@1")) | set(_chunk_ids(ws, "c@1"))
        for folder in (fast, fast2):
            space = shutil.disk_usage(folder)
            assert space.used <= DEFAULT_FILL_LIMIT * space.total
        for name in "bc":  # each loads right, reading hot copies from both devices
            expected = load_file(tmp_path / f"src-{name}" / "model.safetensors")
            got = mm.load(f"{name}@1", repo=tmp_path / "repo")
            for tensor, arr in expected.items():
                np.testing.assert_array_equal(got[tensor], arr)
        assert scrub(ws).ok
