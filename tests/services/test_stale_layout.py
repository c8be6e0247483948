"""A write follows the devices and policy on disk, not the ones its process read at open."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.services import Workspace, open_workspace
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from tests.support.builders import small_model, write_safetensors


def test_an_import_uses_the_policy_another_process_set_after_this_one_opened(
    ws: Workspace, tmp_path: Path
) -> None:
    """The window's workspace stays open while a CLI adds a device and sets copies=2: its
    next import must write two copies, not one (silent under-protection)."""
    other = open_workspace(ws.repo.root)  # what a second process sees
    try:
        add_device(other, tmp_path / "disk1", name="disk1")
        set_policy(other, "copies=2")
    finally:
        other.close()
    assert ws.repo.policy_for("m").copies == 1  # the stale view, before any write
    source = write_safetensors(tmp_path / "in" / "m.safetensors",
                               small_model(np.random.default_rng(0)))  # fmt: skip
    manifest = import_paths(ws, [source], "m").manifest
    assert ws.repo.policy_for("m").copies == 2
    for chunk in manifest.chunk_ids():
        devices = {d.name for d, _key in ws.repo.chunks.piece_keys(chunk)}
        assert devices == {"main", "disk1"}, chunk
