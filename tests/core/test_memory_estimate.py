"""Memory estimates: the mixed-precision rule of 16 bytes per parameter, and per-dtype weights."""

from __future__ import annotations

from modelmanager.core.analysis.memory import estimate

MIX = {"F32": 4_000, "BF16": 2_000}  # 1,000 fp32 and 1,000 bf16 parameters


def test_stored_counts_each_dtype_and_a_master_copy_for_16_bit_weights() -> None:
    e = estimate(MIX)
    assert e.inference == 6_000
    assert e.training == 2 * 6_000 + 8 * 2_000 + 4 * 1_000


def test_bf16_training_is_the_usual_16_bytes_per_parameter() -> None:
    e = estimate(MIX, "BF16")
    assert e.inference == 2 * 2_000
    assert e.training == 16 * 2_000


def test_fp32_training_is_16_bytes_per_parameter_without_a_master_copy() -> None:
    assert estimate(MIX, "F32").training == 16 * 2_000


def test_quantised_targets_give_inference_only() -> None:
    assert estimate(MIX, "Q4").inference == 1_000
    assert estimate(MIX, "I8").training is None
