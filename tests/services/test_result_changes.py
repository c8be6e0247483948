"""Every writing service's result says what it changed (``changes``), so a front refreshes that
and nothing else; and a front never has to guess it (the window used to make these up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.core.codecs import CodecSettings
from modelmanager.services import Changes, Workspace
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage
from modelmanager.services.policies import set_codec, set_policy
from modelmanager.services.recompress import recompress
from modelmanager.services.redundancy import rebalance
from tests.support.builders import small_model, write_safetensors


def _two_models(ws: Workspace, tmp_path: Path) -> None:
    for n, name in enumerate(("a", "b")):
        source = write_safetensors(tmp_path / name / "model.safetensors",
                                   small_model(np.random.default_rng(n)))  # fmt: skip
        import_paths(ws, [source], name)
    add_device(ws, tmp_path / "d1", name="d1")


def test_a_default_policy_names_the_models_it_governs_and_the_storage(
    ws: Workspace, tmp_path: Path
) -> None:
    _two_models(ws, tmp_path)
    own = set_policy(ws, "copies=2", "a")
    assert own.changes == Changes(frozenset({"a"}), storage=True)
    assert (own.policy, own.model) == (ws.repo.policy_for("a"), "a")
    assert own.report.written_pieces > 0
    # "a" keeps its own policy: the new default is the policy of "b" only
    default = set_policy(ws, "copies=2")
    assert default.changes.models == frozenset({"b"})
    assert default.changes.storage
    assert str(ws.repo.policy_for("b")) == "copies=2"


def test_a_policy_for_a_model_about_to_be_imported_names_it(ws: Workspace) -> None:
    changed = set_policy(ws, "copies=1", "new/one", new_model=True)
    assert changed.changes == Changes(frozenset({"new/one"}))
    assert changed.report.written_pieces == 0


def test_recompress_names_the_model_whose_stored_size_changed(
    ws: Workspace, tmp_path: Path
) -> None:
    _two_models(ws, tmp_path)
    report = recompress(ws, "a@1", CodecSettings("raw"))
    assert report.changes == Changes(frozenset({"a"}), storage=True)


def test_device_and_codec_changes_say_what_to_refresh(ws: Workspace, tmp_path: Path) -> None:
    _two_models(ws, tmp_path)
    assert add_device(ws, tmp_path / "d2", name="d2").changes == Changes(storage=True)
    assert set_device(ws, "d2", weight=2.0).changes == Changes(storage=True)
    assert set_codec(ws, CodecSettings("raw"), "a").changes == Changes(frozenset({"a"}))
    assert set_codec(ws, CodecSettings("raw")).changes.models == frozenset({"a", "b"})


def test_a_dry_run_gc_says_it_was_one_and_changes_nothing(ws: Workspace, tmp_path: Path) -> None:
    _two_models(ws, tmp_path)
    planned = collect_garbage(ws, dry_run=True)
    assert planned.dry_run
    assert planned.to_json()["dry_run"] is True
    assert planned.changes == Changes()
    done = collect_garbage(ws)
    assert not done.dry_run
    assert done.to_json()["dry_run"] is False


def test_a_rebalance_that_moves_pieces_names_the_storage(ws: Workspace, tmp_path: Path) -> None:
    _two_models(ws, tmp_path)  # every piece on main; d1 came after
    moved = rebalance(ws)
    assert moved.moved_pieces > 0
    assert moved.changes == Changes(storage=True)
    again = rebalance(ws)  # nothing left to move: nothing to refresh
    assert (again.moved_pieces, again.changes) == (0, Changes())
