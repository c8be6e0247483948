"""Issue 21's structure view, the bullets the first tests left loose: a GGUF file's
quantization mix per block and tokenizer kind (from its metadata, a real vocabulary array
skipped, not read), and an HDF5 file's tree from its groups, whose counts add up."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.cli.structure import print_structure
from modelmanager.core.analysis.structure import Node, mix_text, structure
from modelmanager.services import Workspace
from modelmanager.services.importing import import_paths
from tests.services.test_structure import _adds_up
from tests.support.builders import write_gguf

#: One block's bytes: attn_q in Q4_K (2 x 256 elements, 144 bytes each 256), ffn_down in Q6_K
#: (210 bytes each 256), attn_norm 256 x F32.
BLOCK_MIX = "F32 59%, Q6_K 24%, Q4_K 17%"  # 1024, 420 and 288 of 1732 bytes


def _quantized_gguf(path: Path) -> Path:
    """Llama blocks 1-3 of mixed quantization (block 0 is write_gguf's one Q8_0 tensor), a
    1000-token vocabulary array and its tokenizer kind, written by the gguf library."""
    import gguf

    def more(w: Any) -> None:
        w.add_context_length(4096)
        w.add_block_count(4)
        w.add_tokenizer_model("gpt2")
        w.add_token_list([f"tok{i}" for i in range(1000)])
        for i in range(1, 4):
            w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((2, 144), np.uint8),
                         raw_dtype=gguf.GGMLQuantizationType.Q4_K)  # fmt: skip
            w.add_tensor(f"blk.{i}.ffn_down.weight", np.zeros((2, 210), np.uint8),
                         raw_dtype=gguf.GGMLQuantizationType.Q6_K)  # fmt: skip
            w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(256, np.float32))

    return write_gguf(path, more)


def _child(node: Node, *labels: str) -> Node:
    for label in labels:
        node = next(c for c in node.children if c.label == label)
    return node


def test_a_gguf_file_shows_each_blocks_quantization_mix_and_its_tokenizer(
    ws: Workspace, tmp_path: Path
) -> None:
    m = import_paths(ws, [_quantized_gguf(tmp_path / "q.gguf")], "q").manifest
    s = structure(m)
    _adds_up(s, m)
    blk = _child(s.root, "blk")
    assert [c.label for c in blk.children] == ["0", "1-3 x 3"]
    assert _child(blk, "0").dtypes == {"Q8_0": 4 * 34}
    run = _child(blk, "1-3 x 3")
    assert run.run is not None
    assert run.run.each_bytes == 1024 + 420 + 288
    assert run.run.each_parameters == 256 + 512 + 512
    assert mix_text(run.dtypes) == BLOCK_MIX  # the mix of one block is every block's
    assert _child(run, "attn_q").dtypes == {"Q4_K": 288}
    assert _child(run, "ffn_down").dtypes == {"Q6_K": 420}
    ((_file, facts),) = s.facts
    assert facts["tokenizer"] == "gpt2"
    assert facts["context length"] == "4096"
    assert facts["blocks"] == "4"

    out = io.StringIO()
    print_structure(m, out=out)
    lines = out.getvalue().splitlines()
    assert any("tokenizer gpt2" in line and "context length 4096" in line for line in lines)
    (row,) = [line for line in lines if line.strip().startswith("1-3 x 3")]
    assert BLOCK_MIX in row


def test_a_keras_h5_tree_adds_up_at_every_level(ws: Workspace, tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    from tests.support.graph_models import write_keras_h5

    m = import_paths(ws, [write_keras_h5(tmp_path / "k.h5")], "k").manifest
    s = structure(m)
    _adds_up(s, m)
    dense = _child(s.root, "model_weights", "dense", "dense")
    assert [(c.name, c.shape) for c in dense.children] == [("kernel:0", (4, 8)), ("bias:0", (8,))]


def test_an_hdf5_files_groups_make_the_tree(ws: Workspace, tmp_path: Path) -> None:
    """Any HDF5 file, not only Keras's: each group a module, numbered groups folded."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h:
        for i in range(4):
            g = h.create_group(f"encoder/layers/{i}/ffn")
            g.create_dataset("w", data=np.zeros((6, 3), np.float32))
            g.create_dataset("b", data=np.zeros(6, np.float64))
        h.create_dataset("head/w", data=np.zeros((2, 3), np.float16))
    m = import_paths(ws, [path], "plain").manifest
    s = structure(m)
    _adds_up(s, m)
    assert [c.name for c in s.root.children] == ["encoder", "head"]
    (run,) = _child(s.root, "encoder", "layers").children
    assert run.label == "0-3 x 4"
    assert run.run is not None
    assert (run.run.each_parameters, run.run.each_bytes) == (24, 6 * 3 * 4 + 6 * 8)
    assert s.parameters == 4 * 24 + 6
