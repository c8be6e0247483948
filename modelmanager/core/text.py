"""Text from files made safe to show: control, format and line-separator characters escaped.

A tensor name, a metadata value or a file name can hold a bidi override (U+202E), an escape
sequence (ESC), NEL or U+2028. Printed raw, these reorder or break the line they sit in, or
drive the terminal. Every front passes such text through :func:`shown` at the moment it is
displayed; what is stored stays exact.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["json_shown", "shown"]

# Unicode categories that are never shown raw: controls (C0, DEL, C1 including NEL U+0085),
# format characters (bidi embeddings, overrides and isolates, zero-width characters, BOM, tags),
# line and paragraph separators, and surrogates (only lone ones can sit in a str).
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Where Unicode (14 to 16) puts those categories, a little widened; each match is still checked
# against unicodedata, and a test walks every code point, so a later Unicode that adds a format
# character elsewhere fails that test instead of passing unnoticed. Matching only these spans
# keeps CJK, Cyrillic and every other script out of the slow path.
_SPANS = (
    "\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ud800-\udfff\ufeff\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001345f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f"
)
_CANDIDATE = re.compile(f"[\x00-\x1f{_SPANS}]")
_JSON_CANDIDATE = re.compile(f"[{_SPANS}]")  # json.dumps already escapes C0 in strings
_decided: dict[str, str] = {}


def _escape(ch: str) -> str:
    """The visible form of one character: itself, or a Python-style escape."""
    if ch in _NAMED:
        return _NAMED[ch]
    if unicodedata.category(ch) not in _HIDDEN:
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _replace(match: re.Match[str]) -> str:
    ch = match.group()
    out = _decided.get(ch)
    if out is None:
        out = _decided[ch] = _escape(ch)
    return out


def shown(text: str) -> str:
    """``text`` with every control, format, line-separator and lone surrogate escaped.

    Letters, marks, digits, punctuation, symbols and spaces of any script are kept as they
    are (``日本語``, ``é``); ``\\u202e``, ``\\x1b``, ``\\n``, ``\\x85``, ``\\u2028`` and
    ``\\udc80`` stand in for the rest, so a name can never reorder, split or colour a line.
    """
    if text.isprintable():  # the common case, decided in C: nothing to escape
        return text
    return _CANDIDATE.sub(_replace, text)


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if unicodedata.category(ch) not in _HIDDEN:
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells a character beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_shown(document: str) -> str:
    """A JSON document (``json.dumps(..., ensure_ascii=False)``) with hidden characters escaped.

    ``ensure_ascii=False`` keeps names readable but leaves DEL, C1 controls, bidi and
    line-separator characters and lone surrogates raw. Outside strings JSON is ASCII, so each
    of these sits in a string, where ``\\uXXXX`` parses back to the very same character.
    """
    if document.isascii() and "\x7f" not in document:
        return document
    return _JSON_CANDIDATE.sub(_json_escape, document)


def clipped(text: str, limit: int = 120) -> str:
    """``text`` shown (see :func:`shown`) and cut to ``limit`` characters, for a one-line
    message that quotes a name from a file."""
    return shown(text[:limit]) + ("..." if len(text) > limit else "")
