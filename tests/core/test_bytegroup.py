"""The byte-grouping codec: exact round trips for every float dtype and any bytes at all."""

from __future__ import annotations

import struct

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmanager.core import codecs
from modelmanager.core.codecs import CodecSettings, bytegroup
from modelmanager.errors import IntegrityError

FLOATS = {
    "BF16": ml_dtypes.bfloat16, "F16": np.float16, "F32": np.float32, "F64": np.float64,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
}  # fmt: skip


def _weights(dtype: str, n: int, seed: int = 0) -> bytes:
    values = np.random.default_rng(seed).standard_normal(n) * 0.02
    return np.asarray(values).astype(FLOATS[dtype]).tobytes()


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_weights_of_every_float_dtype_round_trip_and_shrink(dtype: str) -> None:
    data = _weights(dtype, 100_000)
    payload = bytegroup.encode(data, bytegroup.FLOAT_ITEMSIZE[dtype])
    assert bytes(bytegroup.decode(payload, len(data))) == data
    if bytegroup.FLOAT_ITEMSIZE[dtype] > 1:
        assert len(payload) < 0.9 * len(data)


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_nan_inf_denormal_and_signed_zero_payloads_round_trip(dtype: str) -> None:
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-40, 5e-324, 65504.0])
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.tile(special, 997).astype(FLOATS[dtype])
    data = values.tobytes()
    payload = bytegroup.encode(data, bytegroup.FLOAT_ITEMSIZE[dtype])
    assert bytes(bytegroup.decode(payload, len(data))) == data


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=5000), itemsize=st.sampled_from([1, 2, 4, 8]))
def test_any_bytes_of_any_length_round_trip(data: bytes, itemsize: int) -> None:
    payload = bytegroup.encode(data, itemsize)
    assert bytes(bytegroup.decode(payload, len(data))) == data


@settings(max_examples=40, deadline=None)
@given(
    exponents=st.lists(st.integers(0, 255), min_size=1, max_size=40),
    n=st.integers(1, 3000),
    seed=st.integers(0, 1000),
)
def test_exponent_planes_with_rare_values_escape_exactly(
    exponents: list[int], n: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    top = rng.choice(np.array(exponents, dtype=np.uint16), size=n)
    words = (top << np.uint16(7)) | rng.integers(0, 128, n, dtype=np.uint16)
    data = words.astype("<u2").tobytes()
    assert bytes(bytegroup.decode(bytegroup.encode(data, 2), len(data))) == data


def test_empty_and_single_byte_inputs() -> None:
    for data in (b"", b"\x7f", b"\x01\x02\x03"):
        assert bytes(bytegroup.decode(bytegroup.encode(data, 2), len(data))) == data


def test_the_exponent_plane_is_pair_coded_and_the_mantissa_stored_raw() -> None:
    payload = bytegroup.encode(_weights("BF16", 1 << 20), 2)
    methods = []
    pos = 2
    for _ in range(2):
        method, size = struct.unpack_from("<BI", payload, pos)
        methods.append(method)
        pos += 5 + size
    assert methods == [bytegroup.RAW, bytegroup.PAIRS]


def test_auto_picks_bytegroup_for_weights_and_zstd_for_the_rest() -> None:
    weights = _weights("BF16", 1 << 18)
    assert codecs.encode(weights, CodecSettings("auto"), "BF16")[0] == bytegroup.ID
    zeros = bytes(1 << 19)
    assert codecs.encode(zeros, CodecSettings("auto"), "F32")[0] == codecs.codec_by_name("zstd").id
    text = b"tokenizer vocabulary " * 20000
    assert codecs.encode(text, CodecSettings("auto"), None)[0] == codecs.codec_by_name("zstd").id
    noise = np.random.default_rng(1).bytes(1 << 18)
    assert codecs.encode(noise, CodecSettings("auto"), "F32")[0] == codecs.codec_by_name("raw").id
    # bytegroup without a float hint cannot know the element size: it falls back to zstd.
    assert (
        codecs.encode(text, CodecSettings("bytegroup"), "I64")[0] == codecs.codec_by_name("zstd").id
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p[:1],
        lambda p: bytes([9]) + p[1:],
        lambda p: p[:2] + bytes([7]) + p[3:],
        lambda p: p[:3] + struct.pack("<I", 1 << 31) + p[7:],
        lambda p: p[:-3],
        lambda p: p + b"extra",
    ],
    ids=["truncated", "bad version", "bad method", "huge plane length", "short", "trailing"],
)
def test_damaged_payloads_are_integrity_errors(damage: object) -> None:
    data = _weights("BF16", 5000)
    payload = bytegroup.encode(data, 2)
    with pytest.raises(IntegrityError):
        bytegroup.decode(damage(payload), len(data))  # type: ignore[operator]
