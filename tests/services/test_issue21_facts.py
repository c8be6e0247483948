"""Issue 21's structured facts (layer count, hidden size, vocabulary size, context length,
framework) on real files written by each library, filled at import and again by ``reindex``
for versions catalogued without them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelmanager.cli.main import main
from tests.support.builders import minilm_folder, write_gguf

FACT_KEYS = ("layers", "hidden_size", "vocab_size", "context_length", "framework", "formats")


def _torch_zip(path: Path) -> Path:
    """A decoder's state dict saved by torch.save (zip): embedding 100 x 16, learned positions
    64 x 16, three numbered blocks; nothing states its sizes but its tensors."""
    torch = pytest.importorskip("torch", reason="torch is a test-only dependency")
    sd = {"model.embed_tokens.weight": torch.zeros(100, 16),
          "model.embed_positions.weight": torch.zeros(64, 16)}  # fmt: skip
    for i in range(3):
        sd[f"model.layers.{i}.mlp.up_proj.weight"] = torch.zeros(32, 16)
        sd[f"model.layers.{i}.self_attn.q_proj.weight"] = torch.zeros(16, 16)
    torch.save(sd, path)
    return path


def _gguf(path: Path) -> Path:
    """gguf's writer: a token embedding of 8 x 32 (no vocab_size key, as most GGUF files),
    context length, block count and hidden size stated."""

    def more(w: Any) -> None:
        w.add_context_length(2048)
        w.add_block_count(1)
        w.add_embedding_length(32)
        w.add_tokenizer_model("llama")

    return write_gguf(path, more)


def _sources(tmp_path: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    pytest.importorskip("onnx")
    pytest.importorskip("h5py")
    from tests.support.graph_models import write_bert_onnx, write_keras_h5

    out: dict[str, tuple[Path, dict[str, Any]]] = {
        "pt": (_torch_zip(tmp_path / "m.pt"), {"layers": 3, "hidden_size": 16,
               "vocab_size": 100, "context_length": 64, "framework": "pytorch",
               "formats": ["pytorch"]}),
        "gguf": (_gguf(tmp_path / "m.gguf"), {"layers": 1, "hidden_size": 32, "vocab_size": 8,
                 "context_length": 2048, "framework": "gguf", "formats": ["gguf"]}),
        "onnx": (write_bert_onnx(tmp_path / "model.onnx"), {"layers": 6, "hidden_size": 32,
                 "vocab_size": 128, "context_length": 0, "framework": "onnx",
                 "formats": ["onnx"]}),
        "h5": (write_keras_h5(tmp_path / "k.h5"), {"layers": 4, "hidden_size": 0,
               "vocab_size": 0, "context_length": 0, "framework": "keras",
               "formats": ["hdf5"]}),
    }  # fmt: skip
    src = minilm_folder()
    if src is not None:  # safetensors + config.json + card, as the Hub gives it
        out["minilm"] = (src, {"layers": 6, "hidden_size": 384, "vocab_size": 30522,
                               "context_length": 512, "framework": "transformers",
                               "formats": ["safetensors"]})  # fmt: skip
    return out


def _facts(repo: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    capsys.readouterr()
    assert main(["--repo", str(repo), "search", "--size", ">0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    return {r["ref"].split("@")[0]: {k: r[k] for k in FACT_KEYS} for r in rows}


def test_each_library_s_file_gets_its_facts_at_import_and_from_reindex(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = _sources(tmp_path)
    repo = tmp_path / "repo"
    assert main(["--repo", str(repo), "init", "--chunk-size", "64K", "--group-size", "4K"]) == 0
    for name, (path, _known) in sources.items():
        assert main(["--repo", str(repo), "import", str(path), "--model", name]) == 0
    expected = {name: known for name, (_p, known) in sources.items()}
    assert _facts(repo, capsys) == expected

    (catalog,) = (tmp_path / "cache" / "catalogs").glob("*.sqlite")
    with sqlite3.connect(catalog) as db:  # rows as a catalog made before facts existed
        db.execute("UPDATE versions SET facts='{}', architecture='', model_type='', "
                   "dtype_names=' ', formats=' '")  # fmt: skip
    db.close()
    assert all(f["layers"] == 0 for f in _facts(repo, capsys).values())
    assert main(["--repo", str(repo), "reindex"]) == 0
    assert _facts(repo, capsys) == expected


def test_a_stated_size_wins_over_what_the_tensors_show(tmp_path: Path) -> None:
    """GGUF's embedding_length and config.json's max_position_embeddings are what the model
    says; the tensors only fill what nothing states."""
    from modelmanager.core.catalog.facts import facts_of
    from modelmanager.services import init_repository
    from modelmanager.services.importing import import_paths
    from tests.support.builders import write_safetensors

    ws = init_repository(tmp_path / "repo", chunk_size=64 * 1024, group_size=4096)
    try:
        m = import_paths(ws, [_gguf(tmp_path / "m.gguf")], "g").manifest
        assert (facts_of(m).hidden_size, facts_of(m).vocab_size) == (32, 8)
        folder = tmp_path / "f"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 2048,
                                                        "vocab_size": 50}))  # fmt: skip
        opt = {"model.decoder.embed_positions.weight": np.zeros((2050, 4), "f4"),
               "model.decoder.embed_tokens.weight": np.zeros((50, 4), "f4")}  # fmt: skip
        write_safetensors(folder / "model.safetensors", opt)
        f = facts_of(import_paths(ws, [folder], "opt").manifest)
        assert (f.context_length, f.vocab_size, f.hidden_size) == (2048, 50, 4)
        (folder / "config.json").write_text("{}")
        f = facts_of(import_paths(ws, [folder], "opt").manifest)
        assert f.context_length == 2050  # OPT's rows: two more than its config says
    finally:
        ws.close()
