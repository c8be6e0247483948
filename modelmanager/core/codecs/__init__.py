"""Chunk codecs: each has a one-byte id stored with the chunk; all are lossless.

A chunk's id hashes its plain bytes, so choosing or changing a codec never changes identity.
"""

from modelmanager.core.codecs.base import (
    AUTO,
    CODEC_NAMES,
    PAYS_THRESHOLD,
    RAW_ID,
    Codec,
    CodecSettings,
    codec_by_id,
    codec_by_name,
    decode,
    encode,
)

__all__ = [
    "AUTO",
    "CODEC_NAMES",
    "PAYS_THRESHOLD",
    "RAW_ID",
    "Codec",
    "CodecSettings",
    "codec_by_id",
    "codec_by_name",
    "decode",
    "encode",
]
