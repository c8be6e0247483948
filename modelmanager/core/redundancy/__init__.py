"""Redundancy policies and erasure-coded fragments.

``copies=N`` keeps N whole chunk objects on N distinct devices (survives N-1 lost devices).
``ec=K+M`` splits a chunk object into K data fragments and adds M parity fragments (zfec,
Reed-Solomon over GF(2^8)) on K+M distinct devices (survives any M lost devices at a storage
cost of (K+M)/K instead of N).

A fragment file is a 48-byte header (magic ``MMF1``, K, M, index, a zero byte, the object's
length as u64, BLAKE3 of the fragment payload) followed by the payload. The per-fragment hash
lets a reader tell a corrupt fragment from a good one before decoding, so repair never
rebuilds from bad data.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import blake3
import zfec

from modelmanager.core.ids import BytesLike
from modelmanager.errors import IntegrityError, UserError

FRAGMENT_MAGIC = b"MMF1"
FRAGMENT_HEADER = struct.Struct("<4sBBBxQ32s")
MAX_PIECES = 32


@dataclass(frozen=True)
class Policy:
    """A redundancy policy: whole copies, or erasure coding with K data and M parity pieces."""

    copies: int = 1
    k: int = 0
    m: int = 0

    @property
    def erasure(self) -> bool:
        return self.k > 0

    @property
    def pieces(self) -> int:
        """How many pieces on how many distinct devices."""
        return self.k + self.m if self.erasure else self.copies

    @property
    def tolerates(self) -> int:
        """How many devices may be lost without losing data."""
        return self.m if self.erasure else self.copies - 1

    @property
    def overhead(self) -> float:
        """Stored bytes per byte of chunk object."""
        return (self.k + self.m) / self.k if self.erasure else float(self.copies)

    def __str__(self) -> str:
        return f"ec={self.k}+{self.m}" if self.erasure else f"copies={self.copies}"

    @classmethod
    def parse(cls, text: str) -> Policy:
        """``copies=N`` or ``ec=K+M``; UserError otherwise."""
        text = text.strip().replace(" ", "")
        if m := re.fullmatch(r"copies=(\d+)", text):
            n = int(m.group(1))
            if not 1 <= n <= MAX_PIECES:
                raise UserError(f"copies must be 1 to {MAX_PIECES}, got {n}")
            return cls(copies=n)
        if m := re.fullmatch(r"ec=(\d+)\+(\d+)", text):
            k, parity = int(m.group(1)), int(m.group(2))
            if k < 1 or parity < 1 or k + parity > MAX_PIECES:
                raise UserError(f"ec=K+M needs K >= 1, M >= 1 and K+M <= {MAX_PIECES}")
            return cls(copies=0, k=k, m=parity)
        raise UserError(f"invalid policy {text!r}: use copies=N or ec=K+M (e.g. copies=2, ec=4+2)")


def fragment_dir(k: int, m: int) -> str:
    """The folder (under a device root) holding fragments of one K+M layout."""
    return f"fragments/{k}+{m}"


def parse_fragment_dir(name: str) -> tuple[int, int] | None:
    """(K, M) from a fragment folder name like '4+2', or None for anything else."""
    m = re.fullmatch(r"(\d+)\+(\d+)", name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def encode_fragments(obj: BytesLike, k: int, m: int) -> list[list[BytesLike]]:
    """The K+M fragment files of a chunk object, each as parts [header, payload].

    Data fragments are views of ``obj`` (only the last one is padded), so encoding copies
    nothing but the parity zfec computes.
    """
    size = len(obj)
    block = max(1, -(-size // k))
    view = memoryview(obj)
    data: list[BytesLike] = [view[i * block : (i + 1) * block] for i in range(k)]
    for i in range(k):
        if len(data[i]) < block:
            data[i] = bytes(data[i]) + b"\0" * (block - len(data[i]))
    parity = zfec.Encoder(k, k + m).encode(tuple(data), tuple(range(k, k + m)))
    out: list[list[BytesLike]] = []
    for index, payload in enumerate((*data, *parity)):
        digest = blake3.blake3(payload).digest()
        out.append([FRAGMENT_HEADER.pack(FRAGMENT_MAGIC, k, m, index, size, digest), payload])
    return out


@dataclass(frozen=True)
class Fragment:
    """A fragment file, parsed and checked against its own hash."""

    k: int
    m: int
    index: int
    size: int
    payload: BytesLike


def parse_fragment(blob: BytesLike, source: str, verify: bool = True) -> Fragment:
    """Check a fragment's header (and, with ``verify``, its hash); IntegrityError if damaged.

    Skip ``verify`` only where something stronger checks the result (the chunk's own hash).
    """
    if len(blob) < FRAGMENT_HEADER.size:
        raise IntegrityError("fragment is truncated", path=source)
    magic, k, m, index, size, digest = FRAGMENT_HEADER.unpack_from(blob)
    payload = memoryview(blob)[FRAGMENT_HEADER.size :]
    if magic != FRAGMENT_MAGIC or not 0 <= index < k + m:
        raise IntegrityError("not a fragment (bad header)", path=source)
    if verify and blake3.blake3(payload).digest() != digest:
        raise IntegrityError("fragment content does not match its hash", path=source)
    if len(payload) != max(1, -(-size // k)):
        raise IntegrityError("fragment has the wrong length", path=source)
    return Fragment(k, m, index, size, payload)


def decode_fragments(fragments: Mapping[int, Fragment], k: int, m: int) -> bytearray:
    """The chunk object from any K good fragments of one layout."""
    if len(fragments) < k:
        raise IntegrityError(f"only {len(fragments)} of the {k} fragments needed are readable")
    chosen = sorted(fragments)[:k]
    size = fragments[chosen[0]].size
    if any(fragments[i].size != size for i in chosen):
        raise IntegrityError("fragments disagree about the object size")
    if chosen == list(range(k)):
        blocks: list[BytesLike] = [fragments[i].payload for i in chosen]
    else:
        blocks = list(
            zfec.Decoder(k, k + m).decode(
                tuple(fragments[i].payload for i in chosen), tuple(chosen)
            )
        )
    # One copy into the result (fresh memory is slow to touch here: copy once, not thrice).
    out = bytearray(size)
    pos = 0
    for block in blocks:
        n = min(len(block), size - pos)
        out[pos : pos + n] = memoryview(block)[:n]
        pos += n
    return out
