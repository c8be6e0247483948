"""Each format's index states its model facts (``FileIndex.facts``), in a version's metadata
names: the parser knows its format; an import only merges what the files say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelmanager.core.formats import hf_config, index_file
from tests.support.builders import write_gguf, write_safetensors
from tests.support.hostile_folder import write_hdf5, write_onnx


def _facts(path: Path) -> dict[str, str | int]:
    return dict(index_file(path, path.stat().st_size).facts)


def test_safetensors_says_pytorch_only_when_torch_wrote_it(tmp_path: Path) -> None:
    weights = {"w": np.ones((4, 4), np.float32)}
    torch_written = write_safetensors(tmp_path / "pt.safetensors", weights, {"format": "pt"})
    plain = write_safetensors(tmp_path / "np.safetensors", weights)
    assert _facts(torch_written) == {"framework": "pytorch"}
    assert _facts(plain) == {}


def test_npy_and_generic_files_state_no_facts(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(8, np.float32))
    (tmp_path / "notes.txt").write_text("hello")
    assert _facts(tmp_path / "a.npy") == {}
    assert _facts(tmp_path / "notes.txt") == {}


def test_torch_checkpoints_say_pytorch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is a test-only dependency")
    torch.save({"w": torch.ones(3, 3)}, tmp_path / "m.pt")
    assert _facts(tmp_path / "m.pt") == {"framework": "pytorch"}


def test_gguf_states_architecture_name_and_file_type_read_in_the_parent(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    path = write_gguf(tmp_path / "m.gguf", lambda w: w.add_file_type(7))
    assert _facts(path) == {"framework": "gguf", "architecture": "llama", "name": "tiny",
                            "gguf_file_type": "7"}  # fmt: skip


def test_onnx_states_its_opsets_and_keras_hdf5_its_framework(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("h5py")
    onnx_facts = _facts(write_onnx(tmp_path / "m.onnx"))
    assert onnx_facts["framework"] == "onnx"
    assert str(onnx_facts["opset"]).startswith("ai.onnx:")
    assert _facts(write_hdf5(tmp_path / "k.h5")) == {"framework": "keras"}
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as h:  # no keras_version: just HDF5
        h.create_dataset("x", data=np.zeros(4, np.float32))
    assert _facts(tmp_path / "plain.h5") == {}


def test_facts_are_checked_like_metadata(tmp_path: Path) -> None:
    """A fact is text a version stores: one that is not valid Unicode is refused (index_file
    turns the rule's ValueError into the file's FormatError)."""
    pytest.importorskip("gguf")
    path = write_gguf(tmp_path / "m.gguf")
    index = index_file(path, path.stat().st_size)
    assert all(isinstance(v, str) for v in index.facts.values())
    from modelmanager.core.formats import _check_index

    bad = type(index)(index.format, index.tensors, index.regions, index.metadata,
                      index.tensor_regions, {"name": "\ud800"})  # fmt: skip
    with pytest.raises(ValueError, match="facts"):
        _check_index(bad, path.stat().st_size)


def test_config_json_facts(tmp_path: Path) -> None:
    doc = {"architectures": ["TinyForCausalLM", "Other"], "model_type": "tiny",
           "torch_dtype": "bfloat16", "transformers_version": "4.44.0", "num_parameters": 12,
           "n_params": "not a number"}  # fmt: skip
    path = tmp_path / hf_config.NAME
    path.write_text(json.dumps(doc))
    assert hf_config.read_facts(path, path.stat().st_size) == {
        "architecture": "TinyForCausalLM", "model_type": "tiny", "torch_dtype": "bfloat16",
        "framework": "transformers", "config_parameters": 12,
    }  # fmt: skip
    for broken in ("{", "[1, 2]", '{"a": 1, "a": 2}', '{"architectures": [3]}'):
        path.write_text(broken)
        assert hf_config.read_facts(path, path.stat().st_size) == {}
    assert hf_config.read_facts(path, hf_config.MAX_BYTES + 1) == {}  # too large: not read
    assert hf_config.read_facts(tmp_path / "absent.json", 10) == {}


def test_a_folders_own_config_and_card_state_facts_that_win(tmp_path: Path) -> None:
    """config.json and README.md are generic files whose index states the model's facts and
    wins over weight files' facts; named otherwise (a subfolder's), they state nothing."""
    from modelmanager.core.formats import merge_facts

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architectures": ["Bert"], "num_hidden_layers": 6}))
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: mit\n---\n")
    size = config.stat().st_size
    index = index_file(config, size, name="config.json")
    assert (index.format, index.tensors, index.facts_win) == ("generic", (), True)
    assert index.facts == {"architecture": "Bert", "num_hidden_layers": 6}
    assert index_file(card, card.stat().st_size, name="README.md").facts == {"license": "mit"}
    for other in ("sub/config.json", None):
        assert index_file(config, size, name=other).facts == {}
    weights = write_safetensors(tmp_path / "w.safetensors", {"w": np.ones(2, np.float32)},
                                {"format": "pt"})  # fmt: skip
    w = index_file(weights, weights.stat().st_size, name="w.safetensors")
    w2 = type(w)("safetensors", facts={"architecture": "Later", "framework": "other"})
    assert merge_facts([w, index, w2]) == {"framework": "pytorch", "architecture": "Bert",
                                           "num_hidden_layers": 6}  # fmt: skip


def test_a_config_fact_that_is_not_unicode_is_left_out(tmp_path: Path) -> None:
    """JSON's \\ud800 escape is a lone surrogate no manifest or catalog can hold: before, the
    import stored the manifest and then died in the catalog with a traceback (exit 70)."""
    path = tmp_path / "config.json"
    path.write_text('{"architectures": ["\\ud800x"], "model_type": "\\udfff", "vocab_size": 9}')
    assert hf_config.read_facts(path, path.stat().st_size) == {"vocab_size": 9}
