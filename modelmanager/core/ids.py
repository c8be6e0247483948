"""Content addresses: BLAKE3 of the plain (uncompressed) bytes, as lower-case hex."""

from __future__ import annotations

import re

import blake3

#: What our hashing, codecs and stores accept (collections.abc.Buffer is Python 3.12+ only).
BytesLike = bytes | bytearray | memoryview

ID_HEX_LEN = 64
#: Tensor digests are truncated to 128 bits: enough to tell changed tensors apart in a diff.
DIGEST_HEX_LEN = 32
_ID_RE = re.compile(r"[0-9a-f]{64}")


def content_id(data: BytesLike) -> str:
    """The chunk id of ``data``: hex BLAKE3 of exactly these bytes."""
    return blake3.blake3(data).hexdigest()


def new_hasher() -> blake3.blake3:
    """An incremental hasher whose hexdigest matches :func:`content_id`."""
    return blake3.blake3()


def is_content_id(text: str) -> bool:
    """True when ``text`` has the shape of a chunk id (64 lower-case hex digits)."""
    return bool(_ID_RE.fullmatch(text))
