"""A version's metadata composes its files' facts: the first file stating one wins, then
config.json's win, then the tensors' parameter count; the user's --meta wins over all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelmanager.services import Workspace, open_workspace
from modelmanager.services.importing import derive_metadata, import_paths, scan_sources
from tests.support.builders import write_gguf, write_safetensors


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "repo", create=True)


def test_first_file_wins_then_config_json_then_the_user(ws: Workspace, tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    src = tmp_path / "src"
    src.mkdir()
    write_gguf(src / "a.gguf")
    write_safetensors(src / "b.safetensors", {"w": np.ones((2, 3), np.float32)}, {"format": "pt"})
    meta = derive_metadata(scan_sources([src]))
    assert meta["framework"] == "gguf"  # a.gguf is first; b's "pytorch" does not replace it
    assert (meta["architecture"], meta["name"]) == ("llama", "tiny")
    gguf_params = 8 * 32 + 4 * 32  # an 8x32 float tensor and 4 Q8_0 blocks of 32 weights
    assert meta["parameters"] == gguf_params + 6

    (src / "config.json").write_text(json.dumps(
        {"architectures": ["TinyForCausalLM"], "transformers_version": "4.44.0"}))  # fmt: skip
    meta = derive_metadata(scan_sources([src]))
    assert (meta["framework"], meta["architecture"]) == ("transformers", "TinyForCausalLM")
    assert meta["name"] == "tiny"  # what the config does not state stays the file's

    m = import_paths(ws, [src], "mixed", metadata={"architecture": "mine"}).manifest
    assert m.metadata["architecture"] == "mine"
    assert m.metadata["framework"] == "transformers"


def test_the_catalog_lists_each_models_architecture_and_dtype_mix(
    ws: Workspace, tmp_path: Path
) -> None:
    """What the library view sorts by comes from the catalog, not from reading manifests."""
    src = tmp_path / "hf"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    write_safetensors(src / "model.safetensors", {"w": np.ones((4, 4), np.float32),
                                                  "b": np.ones(8, np.float16)})  # fmt: skip
    import_paths(ws, [src], "bert")
    write_safetensors(tmp_path / "plain.safetensors", {"w": np.ones(2, np.float32)})
    import_paths(ws, [tmp_path / "plain.safetensors"], "plain")
    rows = {r.name: r for r in ws.catalog.models()}
    assert (rows["bert"].architecture, rows["bert"].dtypes) == ("BertModel", {"F32": 64, "F16": 16})
    assert (rows["plain"].architecture, rows["plain"].dtypes) == ("", {"F32": 8})
    assert rows["bert"].to_json()["architecture"] == "BertModel"
