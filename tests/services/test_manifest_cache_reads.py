"""The window's version reads parse a manifest once per content (issue 18), and never give a
cached manifest for bytes that changed: a damaged primary copy reads as the repository says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.repo.versions import manifest_key
from modelmanager.errors import IntegrityError, NotFoundError
from modelmanager.services import Workspace
from modelmanager.services.history import MANIFESTS, cached_manifest, set_label, version_details
from modelmanager.services.importing import import_paths
from tests.support.builders import small_model, write_safetensors


@pytest.fixture
def two(ws: Workspace, tmp_path: Path) -> Workspace:
    rng = np.random.default_rng(7)
    for i in range(2):
        src = write_safetensors(tmp_path / f"s{i}" / "m.safetensors", small_model(rng, n=3))
        import_paths(ws, [src], "acme/m")
    set_label(ws, "acme/m@1", "prod")
    return ws


def test_a_version_read_again_is_not_parsed_again(two: Workspace) -> None:
    first = version_details(two, "acme/m@2").manifest
    assert first == two.repo.resolve("acme/m@2")
    assert version_details(two, "acme/m@2").manifest is first  # the same object: no parse
    assert cached_manifest(two, "acme/m") is first  # the newest, by the model's name
    assert cached_manifest(two, "acme/m@prod") == two.repo.resolve("acme/m@1")
    with pytest.raises(NotFoundError):
        cached_manifest(two, "acme/m@9")
    with pytest.raises(NotFoundError):
        cached_manifest(two, "acme/m@nolabel")


def test_changed_bytes_are_read_again_and_a_damaged_copy_is_not_served(two: Workspace) -> None:
    first = cached_manifest(two, "acme/m@2")
    path = two.repo.root / manifest_key("acme/m", 2)
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"message":"', b'"message":"X', 1))  # the check fails now
    with pytest.raises(IntegrityError):
        cached_manifest(two, "acme/m@2")  # as resolve says: no intact copy
    with pytest.raises(IntegrityError):
        two.repo.resolve("acme/m@2")
    path.write_bytes(data)
    assert cached_manifest(two, "acme/m@2") is first  # the same bytes again
    assert len(MANIFESTS) >= 1
