"""Deleting a store's model explicitly (no adopt): what the preview names goes, shared files and
files changed since the listing stay; the same through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelmanager.core.stores import Store
from modelmanager.errors import EXIT_USAGE, UserError
from modelmanager.services import stores
from tests.conftest import subprocess_env
from tests.services.test_stores import REV1, REV2, hf_cache


def _hf(tmp_path: Path) -> tuple[Store, list[stores.StoreModel]]:
    src = tmp_path / "src"
    src.mkdir()
    hf_cache(tmp_path / "hf", src)
    store = Store("huggingface", tmp_path / "hf")
    return store, store.models()


def test_delete_removes_what_the_preview_names_and_keeps_the_shared_blob(tmp_path: Path) -> None:
    store, models = _hf(tmp_path)
    old = next(m for m in models if m.revision == REV1)
    plan = stores.removal_preview(store, old, models)
    result = stores.delete_model(store, old, models)
    assert set(result.removed) == set(plan.paths)
    assert result.freed == plan.bytes > 0
    assert all(not os.path.lexists(p) for p in plan.paths)
    assert all(p.exists() for p in plan.shared)  # config.json: the newer revision uses it
    assert [m.revision for m in store.models()] == [REV2]


def test_delete_refuses_a_file_changed_since_it_was_listed(tmp_path: Path) -> None:
    store, models = _hf(tmp_path)
    old = next(m for m in models if m.revision == REV1)
    weights = next(f for f in old.files if f.name == "model.safetensors").path.resolve()
    data = weights.read_bytes()
    weights.write_bytes(data[::-1])  # same size, new content and time: a download rewrote it
    os.utime(weights, (1, 1))
    with pytest.raises(UserError, match="changed since it was listed"):
        stores.delete_model(store, old, models)
    assert weights.read_bytes() == data[::-1]  # nothing deleted
    assert len(store.models()) == 2


def test_stores_delete_on_the_command_line_previews_then_deletes(tmp_path: Path) -> None:
    _hf(tmp_path)
    env = subprocess_env(tmp_path, HF_HUB_CACHE=str(tmp_path / "hf"))
    cli = [sys.executable, "-m", "modelmanager", "--repo", str(tmp_path / "repo")]
    dry = subprocess.run([*cli, "stores", "delete", "huggingface", f"acme/tiny@{REV1[:8]}",
                          "--dry-run", "--json"], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert len(plan["remove"]) == 3
    assert len(plan["kept_shared"]) == 1
    assert all(os.path.lexists(p) for p in plan["remove"])  # a dry run deletes nothing
    done = subprocess.run([*cli, "stores", "delete", "huggingface", f"acme/tiny@{REV1[:8]}"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Deleted acme/tiny@{REV1} from Hugging Face cache: 3 paths")
    assert not any(os.path.lexists(p) for p in plan["remove"])
    again = subprocess.run([*cli, "stores", "delete", "huggingface", f"acme/tiny@{REV1[:8]}"],
                           env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == EXIT_USAGE
    assert again.stderr.count("\n") == 1
