"""A repository spread over plain device folders seen through FaultyFolders, main offline, so a
load reads every chunk from the devices whose faults a test sets (the fetch tests' setup)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.storage import StoreFactory
from modelmanager.services import Workspace, init_repository
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from tests.support.builders import write_safetensors
from tests.support.faulty import FaultyFolders


def devices_holding(
    tmp_path: Path, faults: FaultyFolders, tensors: dict[str, np.ndarray], *, devices: int,
    policy: str, codec: str, chunk_size: int,
) -> tuple[Workspace, bytes]:  # fmt: skip
    """``tensors`` imported as model "m" into a repository at ``tmp_path/"repo"`` (stores from
    ``faults``) whose devices d0.. at ``tmp_path/"dev<i>"`` hold it under ``policy``, main
    offline; returns the workspace and the original file's bytes."""
    stores = cast(StoreFactory, faults)  # a FaultyBlobStore is a FolderStore by its methods
    ws = init_repository(tmp_path / "repo", chunk_size=chunk_size, group_size=1024,
                         codec=CodecSettings(codec), blob_stores=stores)  # fmt: skip
    set_device(ws, "main", state="offline")
    for i in range(devices):
        add_device(ws, tmp_path / f"dev{i}", name=f"d{i}")
    set_policy(ws, policy)
    src = tmp_path / "src"
    write_safetensors(src / "model.safetensors", tensors)
    import_paths(ws, [src], "m")
    return ws, (src / "model.safetensors").read_bytes()
