"""A downloaded model folder that carries code: modules named like the libraries the app and its
parser children import, each of which leaves a canary file behind the moment it is imported.

Issue 15: no file or folder in a model folder may ever run, whatever the working folder is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.builders import write_gguf, write_safetensors

#: Module files that would shadow a library (or run at interpreter start) if the folder were
#: ever on ``sys.path``; ``modelmanager`` is a package folder.
SHADOWING_MODULES = ("gguf", "h5py", "onnx", "numpy", "safetensors", "zstandard",
                     "sitecustomize", "usercustomize")  # fmt: skip
#: The model files in the folder, one per format (the first three go through the sandbox).
MODEL_FILES = ("tiny.gguf", "keras.h5", "graph.onnx", "weights.safetensors")


def _canary_code(canaries: Path, name: str) -> str:
    """Source that records its own import (which process, with which argv) under ``canaries``."""
    return (
        "import os, sys\n"
        f"_d = {str(canaries)!r}\n"
        "os.makedirs(_d, exist_ok=True)\n"
        f"with open(os.path.join(_d, {name!r} + '-' + str(os.getpid())), 'w') as _f:\n"
        "    _f.write(repr(sys.argv))\n"
    )


def write_hdf5(path: Path) -> Path:
    """A small real Keras-style HDF5 file (h5py)."""
    import h5py

    with h5py.File(path, "w") as h:
        h.attrs["keras_version"] = "3.5.0"
        layer = h.create_group("model_weights/dense")
        layer.create_dataset("kernel", data=np.arange(12, dtype=np.float32).reshape(4, 3))
        layer.create_dataset("bias", data=np.zeros(3, np.float32))
    return path


def write_onnx(path: Path) -> Path:
    """A small real ONNX model (onnx's helpers) with one initializer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(256, dtype=np.float32).reshape(16, 16), name="W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 16])],
        initializer=[weight],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, producer_name="modelmanager-test"), str(path))
    return path


def hostile_folder(root: Path, canaries: Path) -> Path:
    """``root``: one real model file per format beside modules that shadow every library the
    app imports; importing any of them writes a file into ``canaries`` (outside ``root``)."""
    root.mkdir(parents=True)
    for name in SHADOWING_MODULES:
        (root / f"{name}.py").write_text(_canary_code(canaries, name))
    (root / "modelmanager").mkdir()
    (root / "modelmanager" / "__init__.py").write_text(_canary_code(canaries, "modelmanager"))
    (root / "modelmanager" / "__main__.py").write_text(_canary_code(canaries, "modelmanager"))
    write_gguf(root / "tiny.gguf")
    write_hdf5(root / "keras.h5")
    write_onnx(root / "graph.onnx")
    write_safetensors(root / "weights.safetensors", {"w": np.ones((8, 8), np.float32)})
    return root


def canaries_fired(canaries: Path) -> list[str]:
    """The canary files written so far, as ``module-pid: argv`` lines (empty: nothing ran)."""
    if not canaries.is_dir():
        return []
    return sorted(f"{p.name}: {p.read_text()}" for p in canaries.iterdir())
