"""history.read_models: the rows of a few models, made from their versions, are exactly what
Catalog.models lists for them (the window refreshes one model of 10,000 with it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelmanager.services import Workspace
from modelmanager.services.history import read_models, set_label, versions_of
from modelmanager.services.importing import import_paths
from tests.support.builders import hf_folder, small_model, write_safetensors


def test_a_few_models_read_as_the_catalog_lists_them(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    import_paths(ws, [hf_folder(tmp_path / "hf", rng, shards=1)], "acme/hf", labels=["prod"])
    for seq in (1, 2, 3):
        src = write_safetensors(tmp_path / f"s{seq}" / "m.safetensors", small_model(rng, n=seq))
        import_paths(ws, [src], "lab/small", message=f"v{seq}")
    set_label(ws, "lab/small@2", "rc")
    set_label(ws, "lab/small@3", "prod")
    listed = {m.name: m for m in ws.catalog.models()}
    read = read_models(ws, ["acme/hf", "lab/small", "gone/model"])
    assert read.models == {"acme/hf": listed["acme/hf"], "lab/small": listed["lab/small"],
                           "gone/model": None}  # fmt: skip
    assert listed["lab/small"].stored_bytes is None  # not measured yet
    ws.catalog.measure_stored()
    listed = {m.name: m for m in ws.catalog.models()}
    assert listed["lab/small"].stored_bytes
    assert read_models(ws, ["lab/small"]).models == {"lab/small": listed["lab/small"]}
    assert [v.seq for v in read.versions["lab/small"]] == [3, 2, 1]
    assert "gone/model" not in read.versions
    assert versions_of(ws, ["lab/small"]) == {"lab/small": ws.catalog.versions("lab/small")}
    many = versions_of(ws, ["acme/hf", "lab/small"] + [f"x{i}" for i in range(30)])  # one query
    assert many["lab/small"] == ws.catalog.versions("lab/small")
    assert many["x3"] == []
