"""recompress: re-encodes stored chunks in place, verified, resumable, never unreadable."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from modelmanager.core.codecs import CodecSettings, codec_by_name
from modelmanager.core.codecs.bytegroup import ID as BYTEGROUP
from modelmanager.services import Workspace, init_repository
from modelmanager.services import recompress as recompress_module
from modelmanager.services.devices import add_device, set_device
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import stats, verify
from modelmanager.services.policies import set_codec, set_policy
from modelmanager.services.recompress import recompress
from modelmanager.services.redundancy import repair, scrub
from tests.support.builders import tree_bytes, write_safetensors

CHUNK = 64 * 1024


def _model(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    tensors = {
        f"w{i}": (rng.standard_normal(2 * CHUNK // 2) * 0.02).astype(ml_dtypes.bfloat16)
        for i in range(6)
    }
    return write_safetensors(folder / "m.safetensors", tensors).parent


def _codecs_in_use(ws: Workspace) -> set[int]:
    """Codecs of the chunks that lie inside tensors (the header chunk is not a tensor's)."""
    m = ws.repo.resolve("m")
    out = set()
    for f in m.files:
        pos = 0
        for c in f.chunks:
            if any(t.start <= pos and pos + c.length <= t.end for t in f.tensors):
                out.add(ws.repo.chunks.header(c.id).codec_id)
            pos += c.length
    return out


def _copies_on_devices(tmp_path: Path) -> list[Path]:
    return [p for i in range(6) for p in (tmp_path / f"d{i}" / "chunks").rglob("*") if p.is_file()]


def test_recompress_from_zstd_to_bytegroup_shrinks_and_stays_exact(tmp_path: Path) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=4096,
                         codec=CodecSettings("zstd"))  # fmt: skip
    src = _model(tmp_path / "src")
    import_paths(ws, [src], "m")
    assert BYTEGROUP not in _codecs_in_use(ws)
    before = stats(ws).stored_bytes
    report = recompress(ws, "m", CodecSettings("auto"))
    assert report.rewritten > 0
    assert report.stored_after < report.stored_before
    assert stats(ws).stored_bytes < before
    assert BYTEGROUP in _codecs_in_use(ws)
    assert verify(ws).ok
    export_ref(ws, "m", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)
    assert recompress(ws, "m", CodecSettings("auto")).rewritten == 0  # already done


def test_recompress_of_erasure_coded_chunks_survives_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=4096,
                         codec=CodecSettings("zstd"))  # fmt: skip
    set_device(ws, "main", state="offline")
    for i in range(6):
        add_device(ws, tmp_path / f"d{i}", name=f"d{i}")
    set_policy(ws, "ec=4+2")
    src = _model(tmp_path / "src")
    import_paths(ws, [src], "m")
    # Fail on the 4th verified replacement: one chunk is left with a bridge copy and a mix of
    # old and new fragments (each one valid on its own).
    real = recompress_module._replace_verified
    calls = [0]

    def flaky(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 4:
            raise OSError(5, "Input/output error (injected)")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(recompress_module, "_replace_verified", flaky)
    with pytest.raises(OSError, match="injected"):
        recompress(ws, "m", CodecSettings("auto"))
    monkeypatch.setattr(recompress_module, "_replace_verified", real)
    assert len(_copies_on_devices(tmp_path)) == 1  # the bridge copy of the interrupted chunk
    export_ref(ws, "m", tmp_path / "mid")
    assert tree_bytes(tmp_path / "mid") == tree_bytes(src)  # readable in the middle
    assert repair(ws).ok  # and repair does not drop the bridge copy it still needs
    export_ref(ws, "m", tmp_path / "mid2")
    assert tree_bytes(tmp_path / "mid2") == tree_bytes(src)
    report = recompress(ws, "m", CodecSettings("auto"))  # the rerun finishes the job
    assert report.rewritten > 0
    assert scrub(ws).ok
    assert _codecs_in_use(ws) == {BYTEGROUP}
    export_ref(ws, "m", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)
    assert not any(p.name.endswith(".recompress") for p in tmp_path.rglob("*"))
    assert _copies_on_devices(tmp_path) == []  # the bridge copy is gone again


def test_model_codec_default_applies_to_new_chunks(tmp_path: Path) -> None:
    ws = init_repository(tmp_path / "repo", chunk_size=CHUNK, group_size=4096)
    src = _model(tmp_path / "src")
    import_paths(ws, [src], "m")
    set_codec(ws, CodecSettings("zstd", 3), "m")
    assert ws.repo.codec_for("m") == CodecSettings("zstd", 3)
    assert ws.repo.codec_for("other") == CodecSettings("auto", 1)
    rng = np.random.default_rng(9)
    weights = (rng.standard_normal(CHUNK) * 0.02).astype(ml_dtypes.bfloat16)
    write_safetensors(src / "m.safetensors", {"new": weights})
    import_paths(ws, [src], "m")
    m2 = ws.repo.resolve("m@2")
    new_ids = {c.id for c in m2.files[0].chunks} - ws.repo.resolve("m@1").chunk_ids()
    assert {ws.repo.chunks.header(c).codec_id for c in new_ids} <= {
        codec_by_name("zstd").id,
        codec_by_name("raw").id,
    }
