"""Chunk objects: content-addressed, compressed, verified on every read (see chunks.placed).

A chunk object is a 16-byte header (magic ``MMC1``, codec id, three zero bytes, plain length as
u64 little-endian) followed by the codec's payload. Its key is ``chunks/<id[:2]>/<id>`` where the
id is BLAKE3 of the plain bytes; codec and placement are metadata, never part of the identity.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from modelmanager.core import codecs
from modelmanager.core.ids import BytesLike, content_id
from modelmanager.errors import IntegrityError

MAGIC = b"MMC1"
HEADER = struct.Struct("<4sB3xQ")
PREFIX = "chunks"
#: Where a device keeps hot copies of pinned chunks: the plain bytes, no header, named by id.
HOT_PREFIX = "hot"


class ChunkMissing(IntegrityError):
    """No object exists for a chunk a manifest needs."""


def chunk_key(chunk_id: str) -> str:
    """The blob key of a chunk."""
    return f"{PREFIX}/{chunk_id[:2]}/{chunk_id}"


def hot_key(chunk_id: str) -> str:
    """The blob key of a chunk's hot copy (``hot/<id[:2]>/<id>``: its plain bytes, so a load
    reads it straight into place and verifies it by hashing, like any piece)."""
    return f"{HOT_PREFIX}/{chunk_id[:2]}/{chunk_id}"


def is_hot_key(key: str) -> bool:
    """True for the key of a hot copy (never one of the policy's pieces)."""
    return key.startswith(HOT_PREFIX + "/")


@dataclass(frozen=True)
class ChunkHeader:
    """What a chunk object says about itself, read without decoding the payload."""

    codec_id: int
    length: int


def parse_header(blob: BytesLike, key: str) -> ChunkHeader:
    """Check the magic and return codec and plain length; IntegrityError naming ``key``."""
    if len(blob) < HEADER.size:
        raise IntegrityError(f"chunk object is truncated ({len(blob)} bytes)", path=key)
    magic, codec_id, length = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise IntegrityError("not a chunk object (bad magic)", path=key)
    return ChunkHeader(codec_id, length)


def encode_object(
    data: BytesLike, settings: codecs.CodecSettings, hint: str | None = None
) -> list[BytesLike]:
    """The chunk object of ``data`` as parts: header, then the codec's payload."""
    codec_id, payload = codecs.encode(data, settings, hint)
    return [HEADER.pack(MAGIC, codec_id, len(data)), payload]


def decode_object(blob: BytesLike, chunk_id: str, length: int, key: str) -> BytesLike:
    """The plain bytes of a chunk object, checked against the id; IntegrityError naming ``key``."""
    head = parse_header(blob, key)
    if head.length != length:
        raise IntegrityError(
            f"chunk says it holds {head.length} bytes, the manifest says {length}", path=key
        )
    try:
        data = codecs.decode(head.codec_id, memoryview(blob)[HEADER.size :], length)
    except IntegrityError as e:
        raise IntegrityError(e.message, path=key) from None
    if content_id(data) != chunk_id:
        raise IntegrityError("chunk content does not match its hash", path=key)
    return data
