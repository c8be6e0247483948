"""gc finds what dead writers left on every device, not only in the main folder (issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.core.chunks.store import chunk_key
from modelmanager.core.storage.atomic import REPLACE_SUFFIX, TEMP_PREFIX
from modelmanager.services import Workspace
from modelmanager.services.devices import add_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import collect_garbage, plan_gc, verify
from tests.support.builders import small_model, write_safetensors


def test_gc_deletes_temp_files_and_recompress_leftovers_on_every_device(
    ws: Workspace, tmp_path: Path
) -> None:
    add_device(ws, tmp_path / "second", name="second")
    source = write_safetensors(tmp_path / "in" / "m.safetensors",
                               small_model(np.random.default_rng(0)))  # fmt: skip
    manifest = import_paths(ws, [source], "m").manifest
    chunk = sorted(manifest.chunk_ids())[0]
    second = ws.repo.chunks.stores[next(d.id for d in ws.repo.chunks.devices.devices
                                        if d.name == "second")]  # fmt: skip
    dead_temp = second.path("chunks/ab/" + TEMP_PREFIX + "dead")
    dead_temp.parent.mkdir(parents=True, exist_ok=True)
    dead_temp.write_bytes(b"t" * 100)
    # A recompress that died after writing its verified replacement, before renaming it.
    beside = second.path(chunk_key(chunk) + REPLACE_SUFFIX)
    beside.parent.mkdir(parents=True, exist_ok=True)
    beside.write_bytes(b"r" * 200)

    plan = plan_gc(ws)
    assert dict(plan.temp_files) == {dead_temp: 100, beside: 200}
    assert plan.chunks == ()
    result = collect_garbage(ws)
    assert result.freed_bytes == 300
    assert not dead_temp.exists()
    assert not beside.exists()
    assert verify(ws).ok
    export_ref(ws, "m@1", tmp_path / "out")
    assert (tmp_path / "out" / "m.safetensors").read_bytes() == source.read_bytes()
