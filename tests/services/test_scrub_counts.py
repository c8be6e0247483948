"""One damaged piece is one finding: a corrupt piece is not also reported missing.

A flipped byte in one copy (copies=2) or one fragment (ec=2+1) used to read "1 missing,
1 corrupt" on the device, which sends a user looking for a file that is right there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelmanager.services import Workspace, init_repository
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.policies import set_policy
from modelmanager.services.redundancy import repair, scrub
from tests.support.builders import write_safetensors


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("policy", ["copies=2", "ec=2+1"])
def test_a_flipped_byte_is_one_corrupt_piece_and_nothing_missing(
    tmp_path: Path, policy: str
) -> None:
    ws: Workspace = init_repository(tmp_path / "repo")
    for name in ("d0", "d1"):
        add_device(ws, tmp_path / name, name=name)
    set_policy(ws, policy)
    src = tmp_path / "m.safetensors"
    write_safetensors(src, {"w": np.random.default_rng(0).standard_normal((128, 128), np.float32)})
    import_paths(ws, [src], "m")
    pieces = sorted(p for d in ("d0", "d1") for kind in ("chunks", "fragments")
                    for p in (tmp_path / d / kind).rglob("*") if p.is_file())  # fmt: skip
    piece = pieces[0]
    device = piece.relative_to(tmp_path).parts[0]
    _flip(piece)

    report = scrub(ws)
    assert [x.device for x in report.corrupt] == [device]
    assert report.missing == ()
    assert report.by("device") == {device: {"corrupt": 1}}
    assert len(report.under_replicated) == 1  # one good piece fewer than the policy asks

    repair(ws)
    assert scrub(ws).ok
