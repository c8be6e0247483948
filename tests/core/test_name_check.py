"""The case-insensitive model-name check on import: one folder listing per copy, same answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from modelmanager.errors import UserError
from modelmanager.services import Workspace, history
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from tests.support.builders import write_safetensors


def _file(tmp_path: Path, value: float = 1.0) -> Path:
    return write_safetensors(tmp_path / f"w{value}.safetensors", {"w": np.full(3, value, "f4")})


def test_a_name_differing_only_in_case_is_refused(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_file(tmp_path)], "tiny")
    import_paths(ws, [_file(tmp_path)], "org/Llama")
    assert ws.repo.existing_model_name("Tiny") == "tiny"
    assert ws.repo.existing_model_name("ORG/llama") == "org/Llama"
    assert ws.repo.existing_model_name("tiny2") is None
    assert ws.repo.existing_model_name("org") is None
    with pytest.raises(UserError, match="'tiny' exists; names may not differ only in case"):
        import_paths(ws, [_file(tmp_path, 2)], "Tiny")
    import_paths(ws, [_file(tmp_path, 2)], "tiny")  # the same spelling is a new version
    assert ws.repo.version_numbers("tiny") == [1, 2]


def test_a_model_only_on_a_device_copy_still_counts(ws: Workspace, tmp_path: Path) -> None:
    add_device(ws, tmp_path / "disk2", name="disk2")
    import_paths(ws, [_file(tmp_path)], "tiny")
    shutil.rmtree(ws.repo.root / "models" / "tiny")  # main's own records of it are lost
    assert not (ws.repo.root / "models" / "tiny").exists()
    assert ws.repo.existing_model_name("Tiny") == "tiny"
    assert ws.repo.existing_model_name("TINY") == "tiny"


def test_a_removed_model_or_a_stray_folder_is_no_model(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_file(tmp_path)], "tiny")
    history.remove_versions(ws, ["tiny@1"])
    (ws.repo.root / "models" / "Stray").mkdir()
    (ws.repo.root / "models" / "bad name!").mkdir()
    assert ws.repo.model_names() == []
    assert ws.repo.existing_model_name("TINY") is None
    assert ws.repo.existing_model_name("stray") is None
    assert ws.repo.existing_model_name("BAD NAME!") is None
    import_paths(ws, [_file(tmp_path, 2)], "Tiny")  # the name is free again, in any case
    assert ws.repo.existing_model_name("tiny") == "Tiny"
