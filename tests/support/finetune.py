"""A fine-tune of the real MiniLM folder: the same folder with two tensors nudged, written by
safetensors (lineage and module-diff tests, and the screenshots of them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

#: The two tensors the fine-tune changes, and by how much (relative L2 norm of the change).
CHANGED = {"encoder.layer.3.attention.self.query.weight": 0.01, "pooler.dense.weight": 0.05}


def write_fine_tune(src: Path, dest: Path, seed: int = 3) -> Path:
    """A copy of the MiniLM folder whose model.safetensors has the CHANGED tensors nudged."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(str(src / "model.safetensors"))
    rng = np.random.default_rng(seed)
    for name, scale in CHANGED.items():
        a = tensors[name]
        noise = rng.standard_normal(a.shape).astype(np.float32)
        step = scale * np.linalg.norm(a) / np.linalg.norm(noise)
        tensors[name] = (a + step * noise).astype(a.dtype)
    save_file(tensors, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest
