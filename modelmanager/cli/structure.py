"""``show REF --structure``: a version's module tree, folded runs and parameter shares."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from modelmanager.cli.output import human_bytes, human_count, print_json, print_table, shown
from modelmanager.core.analysis.structure import (
    Graph,
    Node,
    Port,
    mix_text,
    percent,
    structure,
)
from modelmanager.core.repo.manifest import Manifest


def add_structure_option(parser: argparse.ArgumentParser) -> None:
    """The ``--structure`` flag of ``show``."""
    parser.add_argument("--structure", action="store_true",
                        help="the module tree from tensor names: runs of identical blocks "
                        "folded, parameter shares (embedding, attention, MLP, norm); an ONNX "
                        "graph's inputs, outputs and operators; a Keras file's layers")  # fmt: skip


def _ports(ports: tuple[Port, ...], total: int) -> str:
    more = f" (+{total - len(ports)} more)" if total > len(ports) else ""
    return "; ".join(p.text for p in ports) + more or "none"


def graph_lines(g: Graph) -> list[str]:
    """An ONNX graph in three lines: inputs, outputs, operator counts (most used first)."""
    shown_ops = sum(n for _op, n in g.operators)
    ops = ", ".join(f"{op} {n}" for op, n in g.operators)
    if g.nodes > shown_ops:
        ops += f" (+{g.nodes - shown_ops} more)"
    return [f"{g.file} inputs: {_ports(g.inputs, g.inputs_total)}",
            f"{g.file} outputs: {_ports(g.outputs, g.outputs_total)}",
            f"{g.file} operators ({g.nodes} nodes): {ops or 'none'}"]  # fmt: skip


def _rows(node: Node, depth: int, total: int, rows: list[list[object]]) -> None:
    """Module rows under ``node``, indented; a module's own weight and bias are not listed, a
    tensor beside modules is (``embeddings.position_ids``)."""
    modules = any(c.shape is None for c in node.children)
    for c in node.children:
        if c.shape is not None and depth > 0 and not modules:
            continue
        name = "  " * depth + c.label
        if c.run is not None:
            name += f"  ({human_count(c.run.each_parameters)} each)"
        rows.append([name, human_count(c.parameters), human_bytes(c.bytes), mix_text(c.dtypes),
                     percent(c.parameters, total)])  # fmt: skip
        _rows(c, depth + 1, total, rows)


def print_structure(m: Manifest, as_json: bool = False, out: TextIO | None = None) -> None:
    """The structure of ``m``: JSON, or a summary, the shares, each file's facts and the tree."""
    out = out or sys.stdout
    s = structure(m)
    if as_json:
        print_json(s.to_json(), out)
        return
    total = s.parameters
    out.write(shown(f"{s.ref}: {human_count(total)} parameters, {human_bytes(s.root.bytes)}, "
                    f"{mix_text(s.root.dtypes) or 'no tensors'}") + "\n")  # fmt: skip
    out.write("  shares: " + ", ".join(f"{k} {percent(v, total)}" for k, v in s.shares.items())
              + "\n")  # fmt: skip
    for path, facts in s.facts:
        out.write(shown(f"  {path}: " + ", ".join(f"{k} {v}" for k, v in facts.items())) + "\n")
    for g in s.graphs:
        for line in graph_lines(g):
            out.write(shown(f"  {line}") + "\n")
    for path, run in s.runs():
        if run.run is not None:
            out.write(shown(f"  run {path}: {human_count(run.run.each_parameters)} parameters "
                            "each") + "\n")  # fmt: skip
    if not s.root.children:
        return
    out.write("\n")
    rows: list[list[object]] = []
    _rows(s.root, 0, total, rows)
    print_table(["MODULE", "PARAMS", "BYTES", "DTYPES", "SHARE"], rows, out)
    if s.runs():
        out.write("Rows under a run (0-5 x 6) describe one of its blocks.\n")
