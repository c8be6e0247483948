"""Codecs: exact round trips, raw fallback, and hostile payloads refused without allocating."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmanager.core import codecs
from modelmanager.core.codecs import CodecSettings
from modelmanager.errors import IntegrityError, UserError


@given(data=st.binary(max_size=20000), name=st.sampled_from(codecs.CODEC_NAMES))
def test_every_codec_round_trips_any_bytes(data: bytes, name: str) -> None:
    codec_id, payload = codecs.encode(data, CodecSettings(name))
    assert bytes(codecs.decode(codec_id, payload, len(data))) == data


@pytest.mark.parametrize(
    "values",
    [
        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 5e-324], dtype=np.float64),
        np.array([np.nan, np.inf, -0.0, 1e-40], dtype=np.float32),
        np.arange(-100, 100, dtype=np.int16),
    ],
)
def test_special_float_payloads_round_trip(values: np.ndarray) -> None:
    data = np.tile(values, 500).tobytes()
    codec_id, payload = codecs.encode(data, CodecSettings("zstd", 3))
    assert codecs.decode(codec_id, payload, len(data)) == data


def test_incompressible_data_is_stored_raw() -> None:
    data = np.random.default_rng(1).bytes(100_000)
    codec_id, payload = codecs.encode(data, CodecSettings("zstd"))
    assert codec_id == codecs.codec_by_name("raw").id
    assert payload == data


def test_compressible_data_uses_zstd() -> None:
    codec_id, payload = codecs.encode(b"\0" * 100_000, CodecSettings("zstd"))
    assert codec_id == codecs.codec_by_name("zstd").id
    assert len(payload) < 1000


def test_zstd_frame_declaring_a_terabyte_is_refused_before_decoding() -> None:
    # Magic, descriptor (8-byte content size, single segment), size = 1 TiB, empty last raw block.
    bomb = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", 1 << 40) + b"\x01\x00\x00"
    with pytest.raises(IntegrityError, match="declares 1099511627776 bytes"):
        codecs.decode(codecs.codec_by_name("zstd").id, bomb, 4096)


def test_unknown_codec_names_and_ids_are_clear_errors() -> None:
    with pytest.raises(UserError, match="unknown codec 'lz77'"):
        CodecSettings("lz77")
    with pytest.raises(IntegrityError, match="unknown codec id 99"):
        codecs.decode(99, b"", 0)
