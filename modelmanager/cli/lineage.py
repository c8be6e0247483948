"""Printing lineage (``show REF --related``) and the module diff (``diff A B --structure``)."""

from __future__ import annotations

import sys
from typing import TextIO

from modelmanager.cli.output import print_table, shown
from modelmanager.core.analysis.lineage import Lineage, StructureDiff, relative_text
from modelmanager.core.units import human_bytes, human_count, plural


def print_related(lin: Lineage, out: TextIO | None = None) -> None:
    """The versions sharing content with ``lin.ref``, largest share first."""
    out = out or sys.stdout
    how = (f"compared with all {lin.candidates} other versions by the catalog's digest index"
           if lin.from_index else
           f"read {lin.scanned} of {lin.candidates} other versions' manifests")  # fmt: skip
    out.write(shown(f"{lin.ref}: {human_bytes(lin.tensor_bytes)} of tensors, "
                    f"{plural(len(lin.related), 'related version')} ({how})") + "\n")  # fmt: skip
    if lin.note:
        out.write(f"  note: {shown(lin.note)}\n")
    for r in lin.related:
        out.write(f"  {shown(r.wording)}\n")
    if lin.related:
        out.write("\n")
        print_table(
            ["VERSION", "SHARE", "TENSORS", "TENSOR BYTES", "CHUNK BYTES"],
            [[r.ref, f"{100 * r.share:.1f} %", r.shared_tensors,
              human_bytes(r.shared_tensor_bytes), human_bytes(r.shared_chunk_bytes)]
             for r in lin.related],
            out,
        )  # fmt: skip


def print_module_diff(d: StructureDiff, out: TextIO | None = None) -> None:
    """The modules that changed, each with its parameters and relative change."""
    out = out or sys.stdout
    out.write(shown(f"{d.a} -> {d.b}: {plural(len(d.modules), 'module')} changed, "
                    f"{human_count(d.parameters)} parameters; {d.unchanged_tensors} tensors "
                    f"unchanged; read {human_bytes(d.bytes_read)}") + "\n")  # fmt: skip
    rows = []
    for m in d.modules:
        rows.append([m.module or "(top level)", m.status, len(m.tensors), m.parameters,
                     relative_text(m.relative)])  # fmt: skip
        for t in m.tensors:
            leaf = t.name.rpartition(".")[2] if m.module else t.name
            rows.append(
                [f"  .{leaf}", t.status, "", t.parameters, relative_text(t.relative, t.why)]
            )
    if rows:
        print_table(["MODULE", "STATUS", "TENSORS", "PARAMS", "RELATIVE CHANGE"], rows, out)
