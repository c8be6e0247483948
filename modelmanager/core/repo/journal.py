"""Journals: every label move and every policy, codec or device change, as an append-only record.

Each change is one sealed record with a unique name (``<time>-<random>.json``): under
``models/<model-dir>/journal/`` for a label, under ``journal/`` for the repository's policy and
device list. Records are never changed, so they replicate and merge like manifests, and
history survives whatever copy is lost. A label's current record must agree with the last
journal entry about it. The journal entry is written first, so a writer killed between the two
leaves the journal right and its model pending (core/repo/changes.py): the next writer sets
the record from the journal. Verify reports any other label that disagrees; repair sets it.
"""

from __future__ import annotations

import getpass
import secrets
import socket
from typing import Any

from modelmanager.core.repo.names import model_key
from modelmanager.core.repo.replicas import Records
from modelmanager.core.storage import BlobNotFound
from modelmanager.errors import IntegrityError

#: The folder of the repository's own journal (policy, codec and device changes).
REPOSITORY_JOURNAL = "journal"


def journal_prefix(model: str | None) -> str:
    """The folder of a model's journal, or of the repository's (``model`` None)."""
    return REPOSITORY_JOURNAL if model is None else f"{model_key(model)}/journal"


def who() -> dict[str, str]:
    """The host and user making a change, for the journal."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return {"host": socket.gethostname(), "user": user}


def append(records: Records, model: str | None, entry: dict[str, Any], now: str) -> None:
    """Add ``entry`` (kind, subject, old, new …) to the journal, stamped with time and who."""
    stamp = now.replace(":", "").replace("-", "").replace(".", "")
    key = f"{journal_prefix(model)}/{stamp}-{secrets.token_hex(4)}.json"
    records.write(key, {**entry, "time": now, **who()}, exclusive=True)


def entries(records: Records, model: str | None) -> list[dict[str, Any]]:
    """Every intact journal entry, oldest first (a damaged one is reported by verify)."""
    found = []
    for key, _size in records.keys(journal_prefix(model)):
        if key.count("/") != (1 if model is None else 3):
            continue
        try:
            found.append((key, records.read(key)))
        except (BlobNotFound, IntegrityError):
            continue
    found.sort(key=lambda kv: (str(kv[1].get("time", "")), kv[0]))
    return [doc for _key, doc in found]


def last_label_moves(records: Records, model: str) -> dict[str, int | None]:
    """What the journal says each label of ``model`` points at now (None: removed)."""
    state: dict[str, int | None] = {}
    for entry in entries(records, model):
        if entry.get("kind") == "label" and isinstance(entry.get("label"), str):
            new = entry.get("new")
            state[entry["label"]] = new if isinstance(new, int) else None
    return state
