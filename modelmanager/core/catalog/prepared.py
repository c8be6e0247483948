"""The catalog rows of one version, made from its manifest alone (no database), so that the
rows of a full sync can be made in two processes at once (core/catalog/reader.py).

Everything in a :data:`Prepared` is a plain tuple, list, str, int or None: ``marshal`` carries
it between processes, and nothing it carries can run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from modelmanager.core.catalog.content import chunk_rows, digest_rows
from modelmanager.core.catalog.facts import dtype_name, facts_of
from modelmanager.core.repo.manifest import Manifest

#: (key, manifest size, model, the ``versions`` row after its rowid, the ``search`` row after
#: its rowid, ``tensor_digests`` rows and ``version_chunks`` rows after their vid).
Prepared = tuple[
    str, int, str, tuple[Any, ...], tuple[str, str, str],
    list[tuple[int, int, int]], list[tuple[int, int, str]],
]  # fmt: skip
#: How many fields a ``versions`` row has after its rowid (``_VERSION_COLUMNS``).
VERSION_FIELDS = 20
#: ``json.dumps(doc, sort_keys=True)`` without making an encoder per call (a rebuild makes
#: 50,000 rows); the text a catalog row keeps of a version's metadata.
sorted_json = json.JSONEncoder(sort_keys=True).encode


def _spaced(words: Iterable[str]) -> str:
    """Words between spaces (`` a b ``), so ``LIKE '% a %'`` finds one exactly."""
    return " " + " ".join(sorted(set(words))) + " "


def prepare(key: str, m: Manifest, size: int) -> Prepared:
    """Every row the catalog keeps of version ``m`` (stored under ``key``, ``size`` bytes)."""
    facts = facts_of(m)
    dtypes = m.dtype_bytes()
    row = (
        key, m.model, m.seq, m.parent, m.created, m.message, sorted_json(m.metadata),
        len(m.files), sum(len(f.tensors) for f in m.files), m.parameters, m.logical_bytes,
        json.dumps(dtypes), size, json.dumps(facts.to_json()), facts.architecture,
        facts.model_type, _spaced(dtype_name(d) for d in dtypes), _spaced(facts.formats),
        facts.license.lower(), facts.base_model.lower(),
    )  # fmt: skip
    meta_text = " ".join(f"{k} {v}" for k, v in m.metadata.items())
    text = (m.model.replace("/", " "), m.message, meta_text)
    return key, size, m.model, row, text, digest_rows(m), chunk_rows(m)


def well_formed(item: Any) -> bool:
    """Whether ``item`` has a Prepared's shape (what a child sends is checked before use)."""
    return (
        type(item) is tuple
        and len(item) == 7
        and type(item[0]) is str
        and type(item[1]) is int
        and type(item[2]) is str
        and type(item[3]) is tuple
        and len(item[3]) == VERSION_FIELDS
        and item[3][0] == item[0]
        and type(item[4]) is tuple
        and len(item[4]) == 3
        and type(item[5]) is list
        and type(item[6]) is list
    )
