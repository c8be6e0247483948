"""The catalog's rows as the fronts see them: versions, models, and what a sync did."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelmanager.core.catalog.facts import Facts, facts_of
from modelmanager.core.catalog.prepared import sorted_json
from modelmanager.core.repo.manifest import Manifest


# The rows are values, never changed once made, but not ``frozen``: a frozen dataclass sets
# each field through ``object.__setattr__``, 5x the cost of a slotted one's plain init
# (11 against 2 ms for 10,000 rows; ls, search and the library tree make 10,000 to 50,000).
@dataclass(slots=True)
class VersionRow:
    """A version as the catalog lists it (no file or tensor detail)."""

    model: str
    seq: int
    parent: int | None
    created: str
    message: str
    #: The version's metadata as the catalog's JSON text (keys sorted; :attr:`metadata`
    #: parses it): only ``show`` and the JSON fronts read it, and parsing 10,000 of them was
    #: ~8 ms of a broad search (the window's 50,000 version rows: ~35 ms).
    metadata_json: str
    files: int
    tensors: int
    parameters: int
    logical_bytes: int
    dtypes: dict[str, int]
    labels: tuple[str, ...]
    facts: Facts = field(default_factory=Facts)

    @property
    def metadata(self) -> dict[str, Any]:
        """The version's metadata (parsed on each call)."""
        parsed: dict[str, Any] = json.loads(self.metadata_json)
        return parsed

    def to_json(self) -> dict[str, Any]:
        """The version as every front's JSON names it (log, search, remote show), its
        structured facts alongside."""
        return {"model": self.model, "version": self.seq, "ref": f"{self.model}@{self.seq}",
                "parent": self.parent, "created": self.created, "message": self.message,
                "labels": list(self.labels), "metadata": self.metadata, "files": self.files,
                "tensors": self.tensors, "parameters": self.parameters,
                "logical_bytes": self.logical_bytes, "dtypes": self.dtypes,
                **self.facts.to_json()}  # fmt: skip

    @classmethod
    def of(cls, m: Manifest, labels: Mapping[str, int]) -> VersionRow:
        """The row of manifest ``m``, with the labels (of its model) that point at it."""
        own = tuple(sorted(k for k, n in labels.items() if n == m.seq))
        return cls(m.model, m.seq, m.parent, m.created, m.message, sorted_json(m.metadata),
                   len(m.files), sum(len(f.tensors) for f in m.files), m.parameters,
                   m.logical_bytes, m.dtype_bytes(), own, facts_of(m))  # fmt: skip


@dataclass(slots=True)
class ModelRow:
    """A model: its versions count, newest version and labels."""

    name: str
    versions: int
    latest: int
    updated: str
    logical_bytes: int
    parameters: int
    labels: dict[str, int]
    #: The newest version's architecture (its facts'; "" when none says) and bytes per dtype
    #: as the catalog's JSON text (:attr:`dtypes` parses it): what the library view shows
    #: and sorts by without opening a manifest. Kept as text because ``ls`` never shows it,
    #: and parsing 10,000 of them was 14 ms of its ~110.
    architecture: str = ""
    dtypes_json: str = "{}"
    #: Bytes the model's versions take on the devices: every copy and fragment counted, a
    #: chunk shared by several of its versions once. None until the pieces were measured
    #: (:meth:`Catalog.measure_stored`) after its newest chunks were written.
    stored_bytes: int | None = None

    @property
    def dtypes(self) -> dict[str, int]:
        """Bytes per dtype of the newest version (parsed on each call)."""
        parsed: dict[str, int] = json.loads(self.dtypes_json)
        return parsed

    def to_json(self) -> dict[str, Any]:
        """The model as the fronts' JSON names it."""
        return {"model": self.name, "versions": self.versions, "latest": self.latest,
                "updated": self.updated, "logical_bytes": self.logical_bytes,
                "parameters": self.parameters, "labels": self.labels,
                "architecture": self.architecture, "dtypes": self.dtypes,
                "stored_bytes": self.stored_bytes}  # fmt: skip


@dataclass(frozen=True)
class SyncResult:
    """What a catalog sync or rebuild did: versions added and forgotten."""

    added: int
    removed: int

    def to_json(self) -> dict[str, Any]:
        return {"versions": self.added, "removed": self.removed}
