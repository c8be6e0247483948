"""The Shard layout's chunk details and the recompress preview, against real stored chunks."""

from __future__ import annotations

from pathlib import Path

from modelmanager.core.codecs import CodecSettings, codec_by_id
from modelmanager.services import Workspace
from modelmanager.services.chunk_info import chunk_details
from modelmanager.services.devices import add_device
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import stats
from modelmanager.services.policies import set_policy
from modelmanager.services.recompress import preview_recompress, recompress
from tests.services.test_recompress import _model


def test_chunk_details_name_tensors_codec_and_every_piece(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_model(tmp_path / "src")], "m")
    add_device(ws, tmp_path / "d1", name="d1")
    set_policy(ws, "copies=2", "m")
    m = ws.repo.resolve("m")
    f = m.files[0]
    last = f.chunks[-1]
    d = chunk_details(ws, "m@1", last.id)
    assert d.length == last.length
    assert d.tensors
    assert all(t.startswith(f"{f.path}: w") for t in d.tensors), d.tensors
    assert f"{f.path}: w5" in d.tensors  # the file's last tensor ends in its last chunk
    assert d.codec == codec_by_id(ws.repo.chunks.header(last.id).codec_id).name
    names = sorted(dev.name for dev in ws.repo.devices.devices)
    assert sorted((p.device, p.piece, p.state) for p in d.pieces) == [
        (name, "copy", "online") for name in names
    ]
    assert d.stored == ws.repo.chunks.stored_size(last.id)


def test_recompress_preview_is_the_size_recompress_leaves(ws: Workspace, tmp_path: Path) -> None:
    import_paths(ws, [_model(tmp_path / "src")], "m", codec=CodecSettings("raw"))
    before = stats(ws).stored_bytes
    preview = preview_recompress(ws, ["m@1"], CodecSettings("zstd"))
    assert stats(ws).stored_bytes == before  # the preview wrote nothing
    assert preview.stored_before == before
    assert preview.stored_after < preview.stored_before
    report = recompress(ws, "m@1", CodecSettings("zstd"))
    assert report.stored_after == preview.stored_after
    assert stats(ws).stored_bytes == preview.stored_after
