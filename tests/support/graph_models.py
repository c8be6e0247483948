"""Real files for the structure view: an ONNX graph written by onnx's helpers (symbolic dims,
an If with two subgraphs, a custom-domain operator) and a Keras-layout HDF5 file by h5py."""

from __future__ import annotations

from pathlib import Path

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
