"""The chunk store: content-addressed, compressed, deduplicated, verified on every read.

A chunk object is a 16-byte header (magic ``MMC1``, codec id, three zero bytes, plain length as
u64 little-endian) followed by the codec's payload. Its key is ``chunks/<id[:2]>/<id>`` where the
id is BLAKE3 of the plain bytes; codec and placement are metadata, never part of the identity.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from modelmanager.core import codecs
from modelmanager.core.ids import BytesLike, content_id, is_content_id
from modelmanager.core.storage import BlobNotFound, BlobStore
from modelmanager.errors import IntegrityError

MAGIC = b"MMC1"
HEADER = struct.Struct("<4sB3xQ")
PREFIX = "chunks"


class ChunkMissing(IntegrityError):
    """No object exists for a chunk a manifest needs."""


def chunk_key(chunk_id: str) -> str:
    """The blob key of a chunk."""
    return f"{PREFIX}/{chunk_id[:2]}/{chunk_id}"


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


class ChunkStore:
    """Puts and gets chunks by id on one BlobStore, encoding with the configured codec."""

    def __init__(self, blobs: BlobStore, settings: codecs.CodecSettings) -> None:
        self.blobs = blobs
        self.settings = settings

    def has(self, chunk_id: str) -> bool:
        """True when an object for the chunk exists (its content is not checked here)."""
        return self.blobs.size(chunk_key(chunk_id)) is not None

    def put(
        self, chunk_id: str, data: BytesLike, settings: codecs.CodecSettings | None = None
    ) -> int:
        """Encode and store ``data`` (whose id the caller computed); return the stored size.

        The write is synced but its name becomes durable only at :meth:`flush`, which the
        importer calls once before it writes the manifest.
        """
        parts = encode_object(data, settings or self.settings)
        return self.blobs.put(chunk_key(chunk_id), parts, sync=False)

    def get(self, chunk_id: str, length: int) -> BytesLike:
        """The plain bytes of a chunk, checked against its id; IntegrityError otherwise."""
        key = chunk_key(chunk_id)
        try:
            blob = self.blobs.get(key)
        except BlobNotFound:
            raise ChunkMissing("chunk is missing", path=key) from None
        return decode_object(blob, chunk_id, length, key)

    def header(self, chunk_id: str) -> ChunkHeader:
        """Codec and length of a stored chunk, reading only its 16-byte header."""
        key = chunk_key(chunk_id)
        try:
            return parse_header(self.blobs.get_range(key, 0, HEADER.size), key)
        except BlobNotFound:
            raise ChunkMissing("chunk is missing", path=key) from None

    def stored_size(self, chunk_id: str) -> int | None:
        """Bytes the chunk object takes in the store, or None when it is missing."""
        return self.blobs.size(chunk_key(chunk_id))

    def iter_stored(self) -> Iterator[tuple[str, int]]:
        """Every stored chunk as (id, stored size); stray files in the chunk folder are skipped."""
        for key, size in self.blobs.list(PREFIX):
            name = key.rsplit("/", 1)[-1]
            if is_content_id(name) and key == chunk_key(name):
                yield name, size

    def delete(self, chunk_id: str) -> None:
        """Remove a chunk object (callers hold the writer lock and checked nothing uses it)."""
        self.blobs.delete(chunk_key(chunk_id))

    def flush(self) -> None:
        """Make every chunk put so far durable, names included."""
        self.blobs.flush()
