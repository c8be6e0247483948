"""ONNX models: initializers as tensors, with the byte range of their data in the file.

The onnx package validates the model and gives its metadata (loaded without external data).
It does not say where bytes lie, so a small protobuf walker follows ModelProto.graph (field 7)
to GraphProto.initializer (field 5) and records each TensorProto's raw_data (field 9) range.
The graph's inputs and outputs (name, dtype, shape) and how often each operator is used are
read from the loaded protobuf (nothing is run) into the metadata as JSON (:data:`GRAPH_KEYS`).
Runs inside the sandbox child (see sandbox.py): never in the app process.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from modelmanager.core.formats.base import fitted

#: ONNX TensorProto.DataType -> our dtype spelling.
DTYPES = {
    1: "F32", 2: "U8", 3: "I8", 4: "U16", 5: "I16", 6: "I32", 7: "I64", 9: "BOOL",
    10: "F16", 11: "F64", 12: "U32", 13: "U64", 16: "BF16",
}  # fmt: skip
MAX_DEPTH = 8
#: Metadata keys of the graph summary: inputs and outputs are ``{"total": n, "items":
#: [[name, dtype, shape], ...]}`` (a dim is a size, a symbolic name, or "?"), operators
#: ``{"total": nodes, "items": [[op, count], ...]}`` most used first (``domain:op`` outside the
#: default domain), subgraphs of If/Loop/Scan included. Items that would not fit one metadata
#: value are left out; ``total`` still counts them (:func:`base.fitted`).
GRAPH_KEYS = ("graph.inputs", "graph.outputs", "graph.operators")
#: Characters of an input's or an operator's name kept.
MAX_SHOWN_NAME = 200


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, value or payload start, payload end) of one message."""
    out = []
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, wire, value, pos))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("a field runs past the end of its message")
            out.append((number, wire, pos, pos + length))
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, wire, pos, pos + size))
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != end:
        raise ValueError("a message overruns its length")
    return out


def _initializers(buf: memoryview) -> list[list[Any]]:
    tensors = []
    for number, wire, gstart, gend in _fields(buf, 0, len(buf)):
        if number != 7 or wire != 2:
            continue
        for inumber, iwire, tstart, tend in _fields(buf, gstart, gend):
            if inumber != 5 or iwire != 2:
                continue
            name, dtype, dims, data, external = "", 0, [], (0, 0), False
            for tnumber, twire, a, b in _fields(buf, tstart, tend):
                if tnumber == 8 and twire == 2:
                    name = bytes(buf[a:b]).decode("utf-8", "replace")
                elif tnumber == 2 and twire == 0:
                    dtype = a
                elif tnumber == 1 and twire == 0:
                    dims.append(a)
                elif tnumber == 1 and twire == 2:  # packed dims
                    pos = a
                    while pos < b:
                        d, pos = _varint(buf, pos)
                        dims.append(d)
                elif tnumber == 9 and twire == 2:
                    data = (a, b)
                elif tnumber in (4, 5, 7, 10, 11) and twire == 2 and data == (0, 0):
                    data = (a, b)  # typed data field (float_data, int32_data, ...)
                elif tnumber == 14 and twire == 0 and a == 1:
                    external = True
            if any(d >= 1 << 62 for d in dims) or math.prod(dims) > 1 << 50:
                raise ValueError(f"initializer {name!r} declares an absurd shape")
            tensors.append([name, DTYPES.get(dtype, f"ONNX{dtype}"), dims,
                            *(data if not external else (0, 0))])  # fmt: skip
    return tensors


def index(path: Path) -> dict[str, Any]:
    """The index of an .onnx file (to be run in the sandbox child)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(str(path))  # by path, so external data is found beside it
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    metadata = {
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": ",".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import),
        "ir_version": str(model.ir_version),
    }
    metadata.update(graph_summary(model.graph))
    return {"tensors": _initializers(buf), "metadata": metadata}


def _port(value: Any) -> list[Any]:
    """[name, dtype, shape] of a graph input or output (a ValueInfoProto)."""
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return [value.name[:MAX_SHOWN_NAME], (kind or "?").removesuffix("_type"), None]
    t = value.type.tensor_type
    dtype = DTYPES.get(t.elem_type, f"ONNX{t.elem_type}")
    if not t.HasField("shape"):
        return [value.name[:MAX_SHOWN_NAME], dtype, None]  # rank unknown
    dims: list[Any] = [d.dim_value if d.HasField("dim_value")
                       else d.dim_param[:MAX_SHOWN_NAME] if d.HasField("dim_param") else "?"
                       for d in t.shape.dim]  # fmt: skip
    return [value.name[:MAX_SHOWN_NAME], dtype, dims]


def _count_ops(graph: Any, counts: Counter[str]) -> None:
    """Count every node's operator in ``graph`` and its subgraphs (If, Loop, Scan bodies),
    walked with a stack: protobuf's own recursion limit bounds the nesting, not Python's."""
    stack = [graph]
    while stack:
        for node in stack.pop().node:
            domain = "" if node.domain in ("", "ai.onnx") else f"{node.domain}:"
            counts[(domain + node.op_type)[:MAX_SHOWN_NAME]] += 1
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def graph_summary(graph: Any) -> dict[str, str]:
    """The metadata of :data:`GRAPH_KEYS` for a GraphProto: its inputs (initializers listed
    as inputs by older exporters left out), outputs and operator counts."""
    weights = {t.name for t in graph.initializer}
    inputs = [_port(v) for v in graph.input if v.name not in weights]
    outputs = [_port(v) for v in graph.output]
    counts: Counter[str] = Counter()
    _count_ops(graph, counts)
    ops = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"graph.inputs": fitted(inputs, len(inputs)),
            "graph.outputs": fitted(outputs, len(outputs)),
            "graph.operators": fitted([list(kv) for kv in ops], sum(counts.values()))}  # fmt: skip


def facts(metadata: dict[str, str]) -> dict[str, str]:
    """Model facts of an ONNX file's (checked) metadata: the framework and its opsets."""
    return {"framework": "onnx", "opset": metadata.get("opset", "")}
