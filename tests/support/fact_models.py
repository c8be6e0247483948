"""A repository of models whose structured facts are known, for the search filter tests."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from modelmanager.cli.main import main
from tests.support.builders import hf_folder, raw_safetensors, write_gguf, write_safetensors

#: What each model is (the facts the tests expect search to find by).
KNOWN: dict[str, dict[str, Any]] = {
    "org/llama-bf16@1": {"architecture": "LlamaForCausalLM", "model_type": "llama",
                         "parameters": 3 * 1000 * 64, "formats": ["safetensors"],
                         "dtypes": ["bf16"], "layers": 3, "hidden_size": 64,
                         "vocab_size": 1000, "context_length": 4096,
                         "license": "apache-2.0", "base_model": "org/base-7b",
                         "labels": ["prod"]},
    "org/tiny-gguf@1": {"architecture": "llama", "model_type": "llama", "formats": ["gguf"],
                        "quantization": ["Q8_0"], "framework": "gguf", "labels": []},
    "org/tiny@1": {"architecture": "TinyForCausalLM", "model_type": "tiny",
                   "formats": ["safetensors"], "dtypes": ["f32", "i64"], "layers": 2,
                   "hidden_size": 64, "vocab_size": 512, "labels": []},
    "org/tiny@2": {"architecture": "TinyForCausalLM", "labels": ["prod"]},
}  # fmt: skip


def bf16_llama(root: Path) -> Path:
    """A Llama-shaped folder with BF16 weights (numpy has no bfloat16: written raw), a config
    stating its sizes and a model card stating its license and base model."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.57.0",
        "hidden_size": 64,
        "num_hidden_layers": 3,
        "vocab_size": 1000,
        "max_position_embeddings": 4096,
    }
    (root / "config.json").write_text(json.dumps(config))  # fmt: skip
    card = "---\nlicense: apache-2.0\nbase_model:\n- org/base-7b\ntags: [x]\n---\n# Llama\n"
    (root / "README.md").write_text(card)
    header: dict[str, object] = {}
    data = b""
    names = ["model.embed_tokens.weight", "model.layers.0.mlp.weight", "model.layers.2.mlp.weight"]
    for name in names:
        n = 1000 * 64
        header[name] = {
            "dtype": "BF16",
            "shape": [1000, 64],
            "data_offsets": [len(data), len(data) + 2 * n],
        }
        data += struct.pack(f"<{n}H", *([0x3F80] * n))  # fmt: skip
    raw_safetensors(root / "model.safetensors", header, data)
    return root


def build_repository(tmp_path: Path) -> Path:
    """A repository holding the models :data:`KNOWN` describes (imported through the CLI)."""
    repo = tmp_path / "repo"
    rng = np.random.default_rng(0)

    def mm(*args: str) -> None:
        assert main(["--repo", str(repo), *args]) == 0

    mm("init", "--chunk-size", "64K", "--group-size", "4K")
    mm("import", str(bf16_llama(tmp_path / "llama")), "--model", "org/llama-bf16",
       "--label", "prod", "-m", "llama in bf16")  # fmt: skip
    mm("import", str(write_gguf(tmp_path / "tiny.gguf")), "--model", "org/tiny-gguf")
    src = hf_folder(tmp_path / "tiny", rng)
    mm("import", str(src), "--model", "org/tiny", "-m", "first")
    write_safetensors(src / "extra.safetensors", {"head.weight": np.ones((512, 64), "float32")})
    mm("import", str(src), "--model", "org/tiny", "-m", "bigger", "--label", "prod")
    return repo
