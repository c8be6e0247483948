"""How much memory a model needs: its weights for inference, plus training state for training.

Training with Adam keeps, per parameter: the weights and their gradients (in the training
dtype), Adam's two moments in fp32 (8 bytes), and, when the training dtype is 16-bit, an fp32
master copy of the weights (4 bytes): the usual 16 bytes per parameter of mixed precision.
Activations depend on batch and sequence length and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelmanager.core.formats.safetensors import DTYPE_BITS

#: Choices offered for an estimate: "stored" (the dtypes the version has) or a target dtype,
#: with its bytes per parameter.
TARGETS: dict[str, float] = {"stored": 0.0, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1,
                             "I8": 1, "Q4": 0.5}  # fmt: skip
_FLOAT16 = {"BF16", "F16"}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for inference, and for training with Adam (None where one cannot train: ints)."""

    inference: int
    training: int | None


def _params(mix: Mapping[str, int]) -> dict[str, int]:
    """Parameters per dtype from bytes per dtype (unknown dtypes count one byte each)."""
    return {d: n * 8 // DTYPE_BITS.get(d.removesuffix("_BE"), 8) for d, n in mix.items()}


def estimate(mix: Mapping[str, int], target: str = "stored") -> MemoryEstimate:
    """Memory for the tensors whose bytes per dtype are ``mix``, loaded as ``target``."""
    params = _params(mix)
    total = sum(params.values())
    if target == "stored":
        weights = sum(mix.values())
        master = 4 * sum(n for d, n in params.items() if d in _FLOAT16)
        return MemoryEstimate(weights, 2 * weights + 8 * total + master)
    per = TARGETS[target]
    weights = int(total * per)
    if not target.startswith(("F", "BF")):
        return MemoryEstimate(weights, None)  # integer and 4-bit weights are not trained as is
    master = 4 * total if target in _FLOAT16 else 0
    return MemoryEstimate(weights, 2 * weights + 8 * total + master)
