"""A version's model card (the README.md of a Hugging Face folder), as plain text for Overview.

The card is read through :class:`services.reading.VersionReader` (only the chunks its first
:data:`MAX_CARD_BYTES` span, each verified against its id), never from the folder it came
from. The text is for a plain-text view: it is decoded as UTF-8 (bad bytes replaced, a
character cut by the limit dropped) and every line passed through :func:`core.text.shown`, so
a bidi override or an escape sequence in a card shows as ``\\u202e`` or ``\\x1b`` and never
reorders or drives the view; line breaks are kept.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from modelmanager.core.formats.hf_config import CARD
from modelmanager.core.repo.manifest import FileRecord, Manifest
from modelmanager.core.text import shown
from modelmanager.services import Workspace
from modelmanager.services.history import cached_manifest
from modelmanager.services.reading import VersionReader

#: Bytes of a card read and shown (real cards are a few kilobytes; the rest is cut).
MAX_CARD_BYTES = 256 * 1024


@dataclass(frozen=True)
class ModelCard:
    """The card of a version: its file, its size, the text shown and whether it was cut."""

    ref: str
    path: str
    size: int
    text: str
    truncated: bool


def card_file(m: Manifest) -> FileRecord | None:
    """The version's own model card: ``README.md`` at the top of the folder imported (any
    case of the name), not a subfolder's; None when it has none."""
    top = [f for f in m.files if "/" not in f.path and f.path.lower() == CARD.lower()]
    exact = [f for f in top if f.path == CARD]
    found = exact or sorted(top, key=lambda f: f.path)
    return found[0] if found else None


def card_text(data: bytes, complete: bool) -> str:
    """``data`` (a card's first bytes) as shown: UTF-8, each line escaped by ``shown``, CRLF
    read as a line break; a character cut at the end of an incomplete read is dropped."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=complete)
    lines = text.split("\n")
    return "\n".join(shown(line.removesuffix("\r")) for line in lines)


def read_card(ws: Workspace, ref: str, limit: int = MAX_CARD_BYTES) -> ModelCard | None:
    """The model card of version ``ref`` (its first ``limit`` bytes), or None when the
    version has no README.md; a missing chunk raises the fetcher's error naming it."""
    m = cached_manifest(ws, ref)
    f = card_file(m)
    if f is None:
        return None
    end = min(f.size, max(limit, 0))
    if end == 0:
        data = b""
    else:
        with VersionReader(ws, m, threads=1) as reader:
            data = reader.read(f, 0, end).tobytes()
    return ModelCard(m.ref, f.path, f.size, card_text(data, end == f.size), end < f.size)
