"""Policies and erasure-coded fragments: any K good fragments rebuild the object exactly."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmanager.core.redundancy import (
    Policy,
    decode_fragments,
    encode_fragments,
    parse_fragment,
)
from modelmanager.errors import IntegrityError, UserError


@pytest.mark.parametrize(
    ("text", "pieces", "tolerates"),
    [("copies=1", 1, 0), ("copies=3", 3, 2), ("ec=4+2", 6, 2), ("ec=10+4", 14, 4)],
)
def test_policies_parse(text: str, pieces: int, tolerates: int) -> None:
    p = Policy.parse(text)
    assert (p.pieces, p.tolerates, str(p)) == (pieces, tolerates, text)


@pytest.mark.parametrize("text", ["copies=0", "ec=4+0", "ec=0+2", "ec=30+4", "raid5", "copies=x"])
def test_bad_policies_are_refused(text: str) -> None:
    with pytest.raises(UserError):
        Policy.parse(text)


def _files(data: bytes, k: int, m: int) -> list[bytes]:
    return [b"".join(bytes(p) for p in parts) for parts in encode_fragments(data, k, m)]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=0, max_size=5000), k=st.integers(1, 6), m=st.integers(1, 3))
def test_every_k_subset_of_fragments_rebuilds_the_object(data: bytes, k: int, m: int) -> None:
    frags = [parse_fragment(f, "t") for f in _files(data, k, m)]
    for subset in itertools.islice(itertools.combinations(range(k + m), k), 20):
        assert decode_fragments({i: frags[i] for i in subset}, k, m) == data


def test_a_flipped_bit_in_a_fragment_is_caught_by_its_own_hash() -> None:
    raw = bytearray(_files(b"x" * 1000, 4, 2)[3])
    raw[-1] ^= 0x04
    with pytest.raises(IntegrityError, match="does not match its hash"):
        parse_fragment(bytes(raw), "dev:frag")


def test_too_few_fragments_is_an_integrity_error() -> None:
    frags = [parse_fragment(f, "t") for f in _files(b"abc" * 100, 4, 2)]
    with pytest.raises(IntegrityError, match="only 3 of the 4"):
        decode_fragments({0: frags[0], 1: frags[1], 5: frags[5]}, 4, 2)
