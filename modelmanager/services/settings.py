"""Per-user lists the app keeps in its data folder (remotes, added model stores), as JSON.

One reader and one writer, so each list is read with the same checks and written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelmanager import paths
from modelmanager.core.storage.atomic import atomic_write
from modelmanager.errors import UserError


def settings_path(name: str) -> Path:
    """Where the per-user file ``name`` (e.g. ``remotes.json``) lives."""
    return paths.data_dir() / name


def read_list(name: str, key: str) -> list[dict[str, Any]]:
    """The entries under ``key`` in ``name`` (none before the first write)."""
    path = settings_path(name)
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read this list of {key} ({e})", path=path) from None
    items = doc.get(key, []) if isinstance(doc, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise UserError(f"this list of {key} is damaged (no '{key}' list)", path=path)
    return items


def write_list(name: str, key: str, items: list[dict[str, Any]]) -> None:
    """Replace the entries under ``key`` in ``name``, atomically."""
    path = settings_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({key: items}, indent=2).encode() + b"\n")
