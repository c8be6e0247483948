"""The case-insensitive model-name check on import: one folder listing per copy, same answers."""

from __future__ import annotations

import difflib
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.repo.hints import SHORTLIST, did_you_mean
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


def test_a_not_found_hint_comes_from_the_index_not_a_listing(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_paths(ws, [_file(tmp_path)], "org/tiny")
    import_paths(ws, [_file(tmp_path)], "other/tinny")

    def no_listing() -> list[str]:
        raise AssertionError("a not-found message listed every model's folder")

    monkeypatch.setattr(ws.repo, "model_names", no_listing)
    closest_first = r"no model named 'org/tinyy' \(did you mean 'org/tiny' or 'other/tinny'\?\)"
    with pytest.raises(UserError, match=closest_first):
        ws.repo.resolve("org/tinyy")
    with pytest.raises(UserError, match=r"no model named 'tiny' \(did you mean 'org/tiny'\?\)"):
        history.log(ws, "tiny")
    with pytest.raises(UserError, match=r"\(did you mean 'org/tiny' or 'other/tinny'\?\)"):
        ws.repo.resolve("orgg/tiny")


def test_did_you_mean_over_many_names_finds_what_difflib_over_all_finds() -> None:
    names = [f"org{i % 37}/model-{i:05d}" for i in range(3000)]
    assert len(names) > SHORTLIST
    rng = random.Random(7)
    for _ in range(20):
        name = rng.choice(names)
        cut = rng.randrange(len(name))
        typo = name[:cut] + name[cut + 1 :]  # one letter dropped, maybe in the org
        best = difflib.get_close_matches(typo, names, n=1, cutoff=0.6)
        assert f"'{best[0]}'" in did_you_mean(typo, names), typo
    assert did_you_mean("zzz", names) == ""
    assert did_you_mean("model-00042", names).startswith(" (did you mean 'org5/model-00042'")
