"""Recover a repository whose main folder is lost: metadata from the devices, then repair.

Composition: core/repo/recovery.py writes the new main folder from the metadata copies on the
surviving devices; :func:`modelmanager.services.redundancy.repair` then brings every chunk back
to its policy from the pieces that survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmanager.core.jobs import JobContext
from modelmanager.core.repo import recovery
from modelmanager.core.storage import LocalBlobStore, StoreFactory
from modelmanager.services import Workspace, open_workspace
from modelmanager.services.redundancy import RepairReport, repair


@dataclass(frozen=True)
class RecoverResult:
    """What came back: the metadata records, the devices read or set offline, and repair."""

    recovered: recovery.Recovered
    models: int
    versions: int
    labels: int
    repair: RepairReport | None

    @property
    def ok(self) -> bool:
        return not self.recovered.damaged and (self.repair is None or self.repair.ok)

    def to_json(self) -> dict[str, Any]:
        r = self.recovered
        return {
            "ok": self.ok, "repository": str(r.root), "records": r.records,
            "models": self.models, "versions": self.versions, "labels": self.labels,
            "devices_read": list(r.found), "devices_offline": list(r.offline),
            "damaged": list(r.damaged),
            "repair": self.repair.to_json() if self.repair is not None else None,
        }  # fmt: skip


def recover_repository(
    dest: Path,
    sources: Sequence[Path],
    *,
    run_repair: bool = True,
    ctx: JobContext | None = None,
    blob_stores: StoreFactory = LocalBlobStore,
) -> tuple[Workspace, RecoverResult]:
    """Rebuild the repository at ``dest`` from the device folders ``sources``, then repair."""
    done = recovery.recover(dest, sources, blob_stores)
    ws = open_workspace(dest, blob_stores=blob_stores)
    models = ws.repo.model_names()
    versions = sum(len(ws.repo.version_numbers(m)) for m in models)
    labels = sum(len(ws.repo.read_labels(m)) for m in models)
    report = repair(ws, ctx=ctx) if run_repair else None
    return ws, RecoverResult(done, len(models), versions, labels, report)
