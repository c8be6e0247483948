"""A version's module tree from its tensor names, shapes and dtypes alone (no data read).

``model.layers.12.self_attn.q_proj.weight`` becomes model > layers > 12 > self_attn > q_proj >
weight (names split at ``.`` and ``/``). Each node carries its parameter count, bytes and bytes
per dtype. Consecutive numbered siblings that are identical (the same relative tensor names,
shapes and dtypes) fold into one *run* node ("0-5 x 6"), whose children are one block's.
Parameters are also split into shares (embedding, attention, MLP, norm, other) by name
heuristics, see :func:`category`. A file whose tensor names clash with names already placed
(a folder holding the same weights as .bin and .safetensors) gets its own root, named
``[path]``, so the counts always add up to the version's parameter count.

An ONNX file's graph (inputs and outputs with dtype and shape, operator counts) and a Keras
HDF5 file's layers (in the model's order, weightless layers included, as module nodes) come
from the summaries its index stored in the file's metadata; a malformed one is left out.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from modelmanager.core.repo.manifest import FileRecord, Manifest

CATEGORIES = ("embedding", "attention", "mlp", "norm", "other")
#: Levels of the tree: the parts of a longer name past this are kept whole in the last one
#: (a 4096-character name may have 2048 parts; the tree is walked by recursion).
MAX_DEPTH = 64
_SPLIT = re.compile(r"[./]")
_NORM = re.compile(r"norm|^ln(_?[a-z0-9]*)?$|^bn\d*$")
_EMBED = re.compile(r"embed|^wte$|^wpe$|^lm_head$|^token_embd$")
_ATTN = re.compile(r"attn|attention|^(q|k|v|o|out)_proj$|^(query|key|value|qkv)$|^w[qkvo]$")
_MLP = re.compile(
    r"mlp|ffn|moe|feed_?forward|intermediate|expert|densereludense|"
    r"^(gate|up|down)_proj$|^fc\d$|^c_fc$|^w[123]$"
)
#: GGUF files keep a few well-known keys worth showing; ``{arch}`` is general.architecture.
GGUF_KEYS = (("general.architecture", "architecture"), ("general.name", "name"),
             ("{arch}.context_length", "context length"), ("{arch}.block_count", "blocks"),
             ("{arch}.embedding_length", "hidden size"), ("tokenizer.ggml.model", "tokenizer"),
             ("general.file_type", "file type"))  # fmt: skip
ONNX_KEYS = (("producer", "producer"), ("opset", "opset"), ("ir_version", "IR version"))
#: A Keras HDF5 file's root attributes worth showing.
HDF5_KEYS = (("keras_version", "Keras version"), ("backend", "backend"))
#: The file metadata keys of the ONNX graph summary and the Keras layer order (see
#: ``core/formats/onnx_index.GRAPH_KEYS`` and ``sandbox.KERAS_LAYERS``).
ONNX_INPUTS, ONNX_OUTPUTS, ONNX_OPERATORS = "graph.inputs", "graph.outputs", "graph.operators"
KERAS_LAYERS = "keras.layers"


def category(name: str) -> str:
    """The share a tensor counts in, from its name: norms first (``attn_norm`` is a norm),
    then embeddings and the output head (``lm_head``, GGUF ``output``), attention, MLP
    (BERT's ``layer.N.output`` is the feed-forward's second half), else "other"."""
    return _category_of([p for p in _SPLIT.split(name) if p])


def _category_of(parts: list[str]) -> str:
    """:func:`category` of a name already split (empty parts dropped)."""
    # blocks repeat: one answer per name with its numbers zeroed (layers.0 ~ layers.31)
    return _category(tuple("0" if p.isdigit() else p.lower() for p in parts))


@functools.lru_cache(maxsize=4096)
def _category(parts: tuple[str, ...]) -> str:
    owners = parts[:-1] or parts  # the tensor's own name (weight, bias) says nothing
    if any(_NORM.search(p) for p in owners):
        return "norm"
    if any(_EMBED.search(p) for p in owners) or (len(parts) == 2 and parts[0] == "output"):
        return "embedding"
    if any(_ATTN.search(p) for p in owners):
        return "attention"
    if any(_MLP.search(p) for p in owners):
        return "mlp"
    if any(a.isdigit() and b == "output" for a, b in itertools.pairwise(owners)):
        return "mlp"
    return "other"


@dataclass(frozen=True, slots=True)
class Node:
    """A module (or a tensor, where ``shape`` is set) with its totals; ``run`` when folded."""

    name: str
    parameters: int
    bytes: int
    dtypes: dict[str, int]  # bytes per dtype
    tensors: int
    children: tuple[Node, ...] = ()
    shape: tuple[int, ...] | None = None
    run: Run | None = None

    @property
    def label(self) -> str:
        """The name as shown: "0-5 x 6" for a run, "[file]" for a file's own root."""
        if self.run is None:
            return self.name
        return f"{self.run.first}-{self.run.last} x {self.run.count}"

    def to_json(self) -> dict[str, Any]:
        """The node and its children; a run gives its members and one block's size."""
        doc: dict[str, Any] = {"name": self.label, "parameters": self.parameters,
                               "bytes": self.bytes, "dtypes": dict(sorted(self.dtypes.items())),
                               "tensors": self.tensors}  # fmt: skip
        if self.shape is not None:
            doc["shape"] = list(self.shape)
        if self.run is not None:
            doc["run"] = self.run.to_json()
        if self.children:
            doc["children"] = [c.to_json() for c in self.children]
        return doc


@dataclass(frozen=True)
class Run:
    """Identical numbered blocks first..last folded into one node; children are one block's."""

    first: int
    last: int
    count: int
    each_parameters: int
    each_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "count": self.count,
                "each_parameters": self.each_parameters, "each_bytes": self.each_bytes}  # fmt: skip


Dim = int | str  # a size, or a symbolic one ("batch"), or "?"


@dataclass(frozen=True)
class Port:
    """An ONNX graph input or output: name, dtype and shape (None: rank unknown)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...] | None

    @property
    def text(self) -> str:
        """As read: "input_ids I64 [batch x 128]"."""
        dims = "?" if self.shape is None else " x ".join(map(str, self.shape)) or "scalar"
        return f"{self.name} {self.dtype} [{dims}]"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype,
                "shape": None if self.shape is None else list(self.shape)}  # fmt: skip


@dataclass(frozen=True)
class Graph:
    """An ONNX file's graph: inputs, outputs and operator counts (most used first). The
    totals count what the index left out to keep its summary short."""

    file: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    operators: tuple[tuple[str, int], ...]
    inputs_total: int
    outputs_total: int
    nodes: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "inputs": [p.to_json() for p in self.inputs],
                "outputs": [p.to_json() for p in self.outputs],
                "operators": dict(self.operators), "inputs_total": self.inputs_total,
                "outputs_total": self.outputs_total, "nodes": self.nodes}  # fmt: skip


@dataclass(frozen=True)
class Structure:
    """A version's module tree, parameter shares, the format facts its files state and the
    graphs of its ONNX files."""

    ref: str
    root: Node
    shares: dict[str, int]  # parameters per category, every category present
    facts: tuple[tuple[str, dict[str, str]], ...] = field(default=())  # (file path, facts)
    graphs: tuple[Graph, ...] = ()

    @property
    def parameters(self) -> int:
        return self.root.parameters

    def runs(self) -> list[tuple[str, Node]]:
        """Every folded run with its dotted path ("encoder.layer.0-5 x 6"), depth first."""
        found: list[tuple[str, Node]] = []

        def walk(node: Node, prefix: str) -> None:
            for c in node.children:
                path = f"{prefix}.{c.label}" if prefix else c.label
                if c.run is not None:
                    found.append((path, c))
                walk(c, path)

        walk(self.root, "")
        return found

    def to_json(self) -> dict[str, Any]:
        """``show --structure --json``: the tree, the shares and each file's facts."""
        return {"ref": self.ref, "parameters": self.parameters, "bytes": self.root.bytes,
                "shares": self.shares, "tree": self.root.to_json(),
                "facts": [{"file": path, **f} for path, f in self.facts],
                "graphs": [g.to_json() for g in self.graphs]}  # fmt: skip


#: A tensor while the tree is built: (dtype, shape, parameters, bytes).
_Tensor = tuple[str, tuple[int, ...], int, int]


class _Trie:
    """A mutable module node while the tree is built."""

    __slots__ = ("kids", "own")

    def __init__(self) -> None:
        self.own: list[_Tensor] = []
        self.kids: dict[str, _Trie] = {}

    def add(self, parts: list[str], t: _Tensor | None = None) -> None:
        """Place ``t`` at ``parts``; without a tensor, only make the (empty) module."""
        node = self
        for p in parts:
            kid = node.kids.get(p)
            if kid is None:
                kid = node.kids[p] = _Trie()
            node = kid
        if t is not None:
            node.own.append(t)


def _leaf(name: str, t: _Tensor) -> Node:
    dtype, shape, parameters, nbytes = t
    return Node(name, parameters, nbytes, {dtype: nbytes}, 1, shape=shape)


def _total(name: str, children: tuple[Node, ...], run: Run | None = None) -> Node:
    """A module over ``children`` with their sums (one pass: 100,000 modules per big model)."""
    dtypes: dict[str, int] = {}
    parameters = nbytes = tensors = 0
    for c in children:
        parameters += c.parameters
        nbytes += c.bytes
        tensors += c.tensors
        for d, n in c.dtypes.items():
            dtypes[d] = dtypes.get(d, 0) + n
    return Node(name, parameters, nbytes, dtypes, tensors, children, run=run)


def _signature(node: Node) -> tuple[Any, ...]:
    """What makes two blocks identical: relative names, shapes and dtypes, in order."""
    if node.shape is not None:
        return (node.label, node.shape, tuple(node.dtypes))
    return (node.label, tuple(_signature(c) for c in node.children))


def _fold(children: list[Node]) -> list[Node]:
    """Fold runs (2 or more) of consecutive numbered siblings with equal signatures."""
    if len(children) < 2:
        return children
    out: list[Node] = []
    i = 0
    while i < len(children):
        j = i + 1
        c = children[i]
        if c.shape is None and c.name.isdigit():
            sig = _signature(Node("", 0, 0, {}, 0, c.children))
            while (j < len(children) and children[j].shape is None
                   and children[j].name.isdigit()
                   and int(children[j].name) == int(children[j - 1].name) + 1
                   and _signature(Node("", 0, 0, {}, 0, children[j].children)) == sig):  # fmt: skip
                j += 1
        if j - i >= 2:
            members = children[i:j]
            block = _total("", c.children)
            run = Run(int(c.name), int(children[j - 1].name), j - i, block.parameters, block.bytes)
            summed = _total(c.name, tuple(members))
            out.append(Node(c.name, summed.parameters, summed.bytes, summed.dtypes,
                            summed.tensors, c.children, run=run))  # fmt: skip
        else:
            out.extend(children[i:j])
        i = j
    return out


def _order(key: str) -> tuple[int, int]:
    return (0, int(key)) if key.isdigit() else (1, 0)


def _freeze(name: str, trie: _Trie) -> Node:
    """The node of ``trie``: own tensors as leaves, numbered children in number order."""
    leaves = [_leaf(name if not trie.kids else "(tensor)", t) for t in trie.own]
    if not trie.kids and len(leaves) == 1:
        return leaves[0]
    keys = list(trie.kids)
    if len(keys) > 1:
        keys.sort(key=_order)  # stable: names keep their first-seen order
    kids = _fold([_freeze(k, trie.kids[k]) for k in keys])
    return _total(name, tuple(leaves + kids))


def _parts(name: str, split: list[str] | None = None) -> list[str]:
    """The path of a tensor in the tree, at most MAX_DEPTH parts (the rest kept whole);
    ``split``: the name's non-empty parts when already split."""
    if split is None:
        split = [p for p in _SPLIT.split(name) if p]
    parts = split or [name]
    if len(parts) > MAX_DEPTH:
        parts = [*parts[: MAX_DEPTH - 1], ".".join(parts[MAX_DEPTH - 1 :])]
    return parts


def _facts(f: FileRecord) -> dict[str, str]:
    """The format facts a file's index recorded (GGUF metadata keys, ONNX opset, producer,
    a Keras file's version, backend and layer count)."""
    meta = f.metadata
    if f.format == "gguf":
        arch = meta.get("general.architecture", "")
        keys = [(k.replace("{arch}", arch), n) for k, n in GGUF_KEYS]
    elif f.format == "onnx":
        keys = list(ONNX_KEYS)
    elif f.format == "hdf5":
        keys = list(HDF5_KEYS)
    else:
        return {}
    out = {n: meta[k] for k, n in keys if meta.get(k)}
    if f.format == "hdf5" and (layers := summary(meta, KERAS_LAYERS)) is not None:
        out["layers"] = str(layers[1])
    return out


def summary(meta: dict[str, str], key: str) -> tuple[list[Any], int, dict[str, Any]] | None:
    """(items, total, the whole document) of a summary an index stored as JSON under ``key``
    (see ``formats.base.fitted``); None when absent or malformed (a hostile manifest)."""
    try:
        doc = json.loads(meta.get(key, ""))
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    items, total = doc.get("items"), doc.get("total")
    if not isinstance(items, list) or type(total) is not int or total < len(items):
        return None
    return items, total, doc


def _port(item: Any) -> Port | None:
    if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
            and isinstance(item[1], str)):  # fmt: skip
        return None
    shape = item[2]
    if shape is None:
        return Port(item[0], item[1], None)
    if not isinstance(shape, list) or not all(
        (type(d) is int and d >= 0) or isinstance(d, str) for d in shape
    ):
        return None
    return Port(item[0], item[1], tuple(shape))


def _graph(f: FileRecord) -> Graph | None:
    """The graph summary an ONNX file's index stored; None when absent or malformed."""
    if f.format != "onnx":
        return None
    keys = (ONNX_INPUTS, ONNX_OUTPUTS, ONNX_OPERATORS)
    found_in, found_out, found_ops = (summary(f.metadata, k) for k in keys)
    if found_in is None or found_out is None or found_ops is None:
        return None
    (ins, n_in, _), (outs, n_out, _), (ops, nodes, _) = found_in, found_out, found_ops
    inputs, outputs = [_port(i) for i in ins], [_port(o) for o in outs]
    operators = [(o[0], o[1]) for o in ops if isinstance(o, list) and len(o) == 2
                 and isinstance(o[0], str) and type(o[1]) is int and o[1] > 0]  # fmt: skip
    if None in inputs or None in outputs or len(operators) != len(ops):
        return None
    return Graph(f.path, tuple(p for p in inputs if p), tuple(p for p in outputs if p),
                 tuple(operators), n_in, n_out, nodes)  # fmt: skip


def _keras_layers(f: FileRecord) -> list[list[str]]:
    """The module path of each layer of a Keras HDF5 file, in the model's order (weightless
    layers included); none for other files."""
    found = summary(f.metadata, KERAS_LAYERS) if f.format == "hdf5" else None
    if found is None:
        return []
    items, _total, doc = found
    group = doc.get("group", "")
    if not isinstance(group, str) or not all(isinstance(n, str) and n for n in items):
        return []
    return [_parts(f"{group}/{name}" if group else name) for name in items]


def structure(m: Manifest) -> Structure:
    """The module tree of ``m`` built from its manifest (names, dtypes, shapes; no data)."""
    main = _Trie()
    placed: set[str] = set()
    own_roots: list[tuple[str, _Trie]] = []
    shares = dict.fromkeys(CATEGORIES, 0)
    facts: list[tuple[str, dict[str, str]]] = []
    graphs: list[Graph] = []
    for f in m.files:
        if fact := _facts(f):
            facts.append((f.path, fact))
        if graph := _graph(f):
            graphs.append(graph)
        layers = _keras_layers(f)
        if not f.tensors and not layers:
            continue
        c = f.tensor_columns  # read field by field: no record made for 100,000 tensors
        names = set(c.names)
        target = main
        if names & placed:  # the same weights again in another file: a root of its own
            target = _Trie()
            own_roots.append((f"[{f.path}]", target))
        else:
            placed |= names
        for parts in layers:  # first, so the layers keep the model's order
            target.add(parts)
        for name, dtype, shape, start, end in zip(c.names, c.dtypes, c.shapes, c.starts, c.ends,
                                                  strict=True):  # fmt: skip
            split = [p for p in _SPLIT.split(name) if p]  # once, for the path and the share
            parameters = math.prod(shape)
            target.add(_parts(name, split), (dtype, tuple(shape), parameters, end - start))
            shares[_category_of(split)] += parameters
    top = _freeze(m.ref, main) if main.kids or main.own else _total(m.ref, ())
    if top.shape is not None:  # a single tensor: still a root above it
        top = _total(m.ref, (top,))
    if own_roots:
        extra = tuple(_freeze(n, t) for n, t in own_roots)
        top = _total(m.ref, top.children + extra)
    return Structure(m.ref, top, shares, tuple(facts), tuple(graphs))


def mix_text(dtypes: dict[str, int]) -> str:
    """A dtype mix as read: "F32", or "Q4_K 80%, F32 20%" by bytes, largest first."""
    total = sum(dtypes.values())
    if len(dtypes) <= 1 or total == 0:
        return ", ".join(dtypes)
    ranked = sorted(dtypes.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{d} {_pct(n, total)}" for d, n in ranked)


def _pct(n: int, total: int) -> str:
    share = round(100 * n / total)
    return "<1%" if share == 0 and n else f"{share}%"


def percent(part: int, whole: int) -> str:
    """A share as read: "52.4 %" ("0 %" of nothing)."""
    return f"{100 * part / whole:.1f} %" if whole else "0 %"
