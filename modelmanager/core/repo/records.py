"""Sealed records: metadata files that carry the BLAKE3 of their own content.

Every metadata file of a repository (config, device list, policy, manifests, labels, removal
records, device identities) is one JSON object in a canonical form (sorted keys, no spaces,
ASCII) with a last member ``"check"``: the lower-case hex BLAKE3-256 of the canonical form of
the object without it. A reader re-derives the exact bytes from what it parsed, so any changed
byte is found: invalid JSON, a different layout, or a checksum that no longer matches. A record
that fails is never used (restic and git name metadata by its hash for the same reason).
"""

from __future__ import annotations

import json
from typing import Any

import blake3

from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.core.gcpause import paused_gc
from modelmanager.errors import IntegrityError

CHECK = "check"


class RecordDamaged(IntegrityError):
    """A metadata record that fails its check: it must not be used (a replica may be)."""


def canonical(doc: dict[str, Any]) -> bytes:
    """The one byte form of a JSON object: sorted keys, no spaces, ASCII only."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def _with_check(body: bytes, check: str) -> bytes:
    member = f'"{CHECK}":"{check}"}}\n'.encode()
    return body[:-1] + (member if body == b"{}" else b"," + member)


def seal(doc: dict[str, Any]) -> bytes:
    """The stored bytes of ``doc``: its canonical form with its checksum as the last member."""
    body = canonical({k: v for k, v in doc.items() if k != CHECK})
    return _with_check(body, blake3.blake3(body).hexdigest())


def unseal(data: bytes, source: str, *, legacy: bool = False) -> dict[str, Any]:
    """The object a sealed record holds; RecordDamaged naming ``source`` when any byte is off.

    ``legacy`` accepts a record written before records were sealed (format 1, no ``check``);
    a record that has a check is always verified."""
    with paused_gc():  # a big record is a million acyclic objects: see core/gcpause.py
        return _unseal(data, source, legacy)


def _unseal(data: bytes, source: str, legacy: bool) -> dict[str, Any]:
    try:
        doc = loads_strict(data)
    except ValueError as e:
        raise RecordDamaged(f"damaged record ({e})", path=source) from None
    if not isinstance(doc, dict):
        raise RecordDamaged("damaged record: not a JSON object", path=source)
    check = doc.pop(CHECK, None)
    if check is None:
        if legacy:
            return doc
        raise RecordDamaged("damaged record: it has no checksum", path=source)
    if isinstance(check, str) and _stored_body_matches(data, check):
        return doc  # the bytes hashed are the bytes read: no second serialisation
    try:
        body = canonical(doc)
    except ValueError as e:
        raise RecordDamaged(f"damaged record ({e})", path=source) from None
    if not isinstance(check, str) or blake3.blake3(body).hexdigest() != check:
        raise RecordDamaged("damaged record: its content does not match its checksum", path=source)
    if _with_check(body, check) != data:
        raise RecordDamaged("damaged record: its bytes are not in the sealed form", path=source)
    return doc


#: The sealed form's last member and end: ``,"check":"<64 hex digits>"}`` and a newline.
_MEMBER = f',"{CHECK}":"'.encode()
_TAIL = len(_MEMBER) + 64 + 3


def _stored_body_matches(data: bytes, check: str) -> bool:
    """True when ``data`` ends in its check member and the bytes before it (closed with ``}``)
    hash to ``check``. Any flipped byte fails this, and the full check (re-serialising the
    object, 0.16 s for a 100,000-tensor manifest) then says why."""
    if len(data) <= _TAIL or not data.endswith(b'"}\n'):
        return False
    member = data[-_TAIL:]
    stated = member[len(_MEMBER) : -3]
    if not member.startswith(_MEMBER) or stated != check.encode(errors="replace"):
        return False
    hasher = blake3.blake3(memoryview(data)[:-_TAIL])
    hasher.update(b"}")
    return hasher.hexdigest() == check


def is_sealed(data: bytes) -> bool:
    """True when ``data`` is an intact sealed record."""
    try:
        unseal(data, "")
    except IntegrityError:
        return False
    return True


def written(doc: dict[str, Any]) -> str:
    """When a mutable record was written (ISO UTC text, sorts as time); '' when it does not say.

    Of two intact copies of one record the later is the current one."""
    value = doc.get("written", "")
    return value if isinstance(value, str) else ""


def record_kind(key: str) -> str:
    """What the record under ``key`` is, as a user reads it ("manifest of org/m@2", "device
    list"): messages about a damaged copy say what was lost, not only the file."""
    fixed = {"config.json": "repository config", "devices.json": "device list",
             "policy.json": "redundancy policy"}  # fmt: skip
    if key in fixed:
        return fixed[key]
    parts = key.split("/")
    if parts[0] == "journal" and len(parts) == 2:
        return "repository journal entry"
    if parts[0] != "models" or len(parts) != 4:
        return "metadata record"
    model, folder, name = parts[1].replace("~", "/"), parts[2], parts[3].removesuffix(".json")
    number = str(int(name)) if name.isdigit() else name
    kinds = {"versions": f"manifest of {model}@{number}", "labels": f"label {model}@{name}",
             "removed": f"removal record of {model}@{number}",
             "journal": f"label journal entry of {model}"}  # fmt: skip
    return kinds.get(folder, "metadata record")
