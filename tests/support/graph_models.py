"""Real files for the structure view: an ONNX graph written by onnx's helpers (symbolic dims,
an If with two subgraphs, a custom-domain operator) and a Keras-layout HDF5 file by h5py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_onnx_graph(path: Path, extra_inputs: int = 0) -> Path:
    """input_ids I64 [batch x seq] and mask F32 [batch x seq] (plus ``extra_inputs`` more,
    X0.. F32 [1]) in; logits and fancy F32 [batch x seq x 4] and a scalar flag out. Nodes: Cast,
    2 MatMul, Add, Relu, an If whose branches hold an Identity and a Neg, and com.example's
    Fancy. W is an initializer also listed as an input, as older exporters did."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 4), np.float32), name="W")
    w2 = numpy_helper.from_array(np.ones((4, 4), np.float32), name="W2")
    flag_t = helper.make_tensor_value_info("t", TensorProto.BOOL, [])
    flag_e = helper.make_tensor_value_info("e", TensorProto.BOOL, [])
    then = helper.make_graph([helper.make_node("Identity", ["cond"], ["t"])], "then", [], [flag_t])
    other = helper.make_graph([helper.make_node("Not", ["cond"], ["e"])], "else", [], [flag_e])
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["ids_f", "mask"], ["x"]),
        helper.make_node("Unsqueeze", ["x", "axes"], ["x3"]),
        helper.make_node("MatMul", ["x3", "W"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "W2"], ["logits"]),
        helper.make_node("ReduceMax", ["mask"], ["mx"], keepdims=0),
        helper.make_node("Greater", ["mx", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["flag"], then_branch=then, else_branch=other),
        helper.make_node("Fancy", ["logits"], ["fancy"], domain="com.example"),
    ]
    dims = ["batch", "seq"]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
              helper.make_tensor_value_info("mask", TensorProto.FLOAT, dims),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 4])]  # fmt: skip
    inputs += [helper.make_tensor_value_info(f"X{i}", TensorProto.FLOAT, [1])
               for i in range(extra_inputs)]  # fmt: skip
    axes = numpy_helper.from_array(np.array([-1], np.int64), name="axes")
    zero = numpy_helper.from_array(np.array(0, np.float32), name="zero")
    graph = helper.make_graph(
        nodes, "g", inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", 4]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
         helper.make_tensor_value_info("fancy", TensorProto.FLOAT, ["batch", "seq", 4])],
        initializer=[w, w2, axes, zero],
    )  # fmt: skip
    model = helper.make_model(graph, producer_name="graph-test", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])  # fmt: skip
    onnx.save(model, str(path))
    return path


#: The layers of :func:`write_keras_h5` in the model's order: input and dropout hold no weights.
KERAS_LAYERS = ("input_1", "dense", "dropout", "dense_1")


def write_keras_h5(path: Path) -> Path:
    """A file laid out as Keras 2's ``model.save("x.h5")`` writes it: root attributes, and
    model_weights with ``layer_names`` in the model's order (not alphabetical: dense_1's
    data is written first), a group per layer holding its weights (none for input_1 and
    dropout)."""
    import h5py

    with h5py.File(path, "w") as h:
        h.attrs["keras_version"] = "2.15.0"
        h.attrs["backend"] = "tensorflow"
        mw = h.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([n.encode() for n in KERAS_LAYERS])
        for name, shape in (("dense_1", (8, 2)), ("dense", (4, 8))):
            g = mw.create_group(f"{name}/{name}")
            g.create_dataset("kernel:0", data=np.ones(shape, np.float32))
            g.create_dataset("bias:0", data=np.zeros(shape[1], np.float32))
        for name in ("input_1", "dropout"):
            mw.create_group(name)
    return path


def write_bert_onnx(path: Path, layers: int = 6, hidden: int = 32, vocab: int = 128) -> Path:
    """A BERT-shaped encoder as an exporter writes it (initializer names as Hugging Face's,
    embeddings, ``layers`` identical blocks, a pooler): small random weights, every node of a
    real block (MatMul, Add, Reshape, Transpose, Softmax, LayerNormalization, Erf...)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits: list[Any] = []
    nodes: list[Any] = []

    def weight(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32),
                                             name=name))  # fmt: skip
        return name

    def node(op: str, ins: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=f"{op}_{len(nodes)}", **attrs))
        return out

    def linear(x: str, prefix: str, n_in: int, n_out: int) -> str:
        h = node("MatMul", [x, weight(f"{prefix}.weight", n_in, n_out)], f"{prefix}/mm")
        return node("Add", [h, weight(f"{prefix}.bias", n_out)], f"{prefix}/out")

    def norm(x: str, prefix: str) -> str:
        return node("LayerNormalization", [x, weight(f"{prefix}.weight", hidden),
                                           weight(f"{prefix}.bias", hidden)], f"{prefix}/out",
                    axis=-1, epsilon=1e-12)  # fmt: skip

    inits.append(numpy_helper.from_array(np.array([0, 0, 4, hidden // 4], np.int64), "heads"))
    inits.append(numpy_helper.from_array(np.array([0, 0, hidden], np.int64), "merged"))
    inits.append(numpy_helper.from_array(np.array(2.0, np.float32), "scale"))
    inits.append(numpy_helper.from_array(np.array(np.sqrt(2.0), np.float32), "sqrt2"))
    inits.append(numpy_helper.from_array(np.array(1.0, np.float32), "one"))
    inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    e = "embeddings"
    x = node("Gather", [weight(f"{e}.word_embeddings.weight", vocab, hidden), "input_ids"], "we")
    t = node("Gather", [weight(f"{e}.token_type_embeddings.weight", 2, hidden),
                        "token_type_ids"], "te")  # fmt: skip
    x = norm(node("Add", [x, t], "emb"), f"{e}.LayerNorm")
    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    mask = node("Unsqueeze", [mask, "axes12"], "mask4")
    inits.append(numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        heads = []
        for part in ("query", "key", "value"):
            h = linear(x, f"{p}.attention.self.{part}", hidden, hidden)
            h = node("Reshape", [h, "heads"], f"{p}/{part}/split")
            heads.append(node("Transpose", [h], f"{p}/{part}/t", perm=[0, 2, 1, 3]))
        kt = node("Transpose", [heads[1]], f"{p}/kt", perm=[0, 1, 3, 2])
        s = node("Div", [node("MatMul", [heads[0], kt], f"{p}/qk"), "scale"], f"{p}/scaled")
        s = node("Softmax", [node("Add", [s, mask], f"{p}/masked")], f"{p}/probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [s, heads[2]], f"{p}/ctx")], f"{p}/ctx_t",
                   perm=[0, 2, 1, 3])  # fmt: skip
        ctx = node("Reshape", [ctx, "merged"], f"{p}/ctx_m")
        a = linear(ctx, f"{p}.attention.output.dense", hidden, hidden)
        x = norm(node("Add", [a, x], f"{p}/res1"), f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense", hidden, 4 * hidden)
        erf = node("Erf", [node("Div", [h, "sqrt2"], f"{p}/gd")], f"{p}/erf")
        g = node("Mul", [node("Mul", [h, node("Add", [erf, "one"], f"{p}/g1")], f"{p}/g2"),
                         "half"], f"{p}/gelu")  # fmt: skip
        o = linear(g, f"{p}.output.dense", 4 * hidden, hidden)
        x = norm(node("Add", [o, x], f"{p}/res2"), f"{p}.output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    first = node("Gather", [x, "zero"], "cls", axis=1)
    inits.append(numpy_helper.from_array(np.array(0, np.int64), "zero"))
    pooled = node("Tanh", [linear(first, "pooler.dense", hidden, hidden)], "pooled")
    nodes.append(helper.make_node("Identity", [pooled], ["pooler_output"]))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes, "bert",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
         for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       [*dims, hidden]),
         helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, producer_name="pytorch", producer_version="2.3.0",
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    onnx.save(model, str(path))
    return path
