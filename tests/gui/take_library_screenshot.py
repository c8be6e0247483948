"""The library screenshots for docs/gui.md: models of several architectures and dtypes with
their columns, sorted by size, one model open; and a search that found one version.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.take_library_screenshot [OUT_DIR]``
(a throwaway repository).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt

from modelmanager.gui.models import REF_ROLE
from modelmanager.services import Workspace, init_repository
from modelmanager.services.importing import import_paths
from tests.gui import shots
from tests.support.builders import hf_folder, write_gguf, write_safetensors


def build(base: Path) -> Workspace:
    """Five models: three architectures of Hugging Face folders, fp16 weights, a GGUF."""
    ws = init_repository(base / "repo")

    def hf(name: str, arch: str, seed: int, shards: int = 1) -> Path:
        folder = hf_folder(base / name, np.random.default_rng(seed), shards=shards)
        config = json.loads((folder / "config.json").read_text())
        config["architectures"] = [arch]
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    llama = "meta/llama-tiny"
    import_paths(ws, [hf("l1", "LlamaForCausalLM", 1, 2)], llama, message="base weights",
                 labels=["prod"])  # fmt: skip
    import_paths(ws, [hf("l2", "LlamaForCausalLM", 2, 2)], llama, message="finetuned on chat")
    import_paths(ws, [hf("l3", "LlamaForCausalLM", 3, 2)], llama, message="epoch 3",
                 labels=["rc1"])  # fmt: skip
    import_paths(ws, [hf("b1", "BertModel", 4)], "google/bert-mini", message="pretrained",
                 labels=["prod"])  # fmt: skip
    import_paths(ws, [hf("m1", "MistralForCausalLM", 5)], "mistral/mini", message="import")
    half: dict[str, np.ndarray[Any, Any]] = {
        f"layers.{i}.w": np.ones((64, 64), dtype=np.float16) for i in range(4)
    }
    half["norm"] = np.ones(64, dtype=np.float32)
    import_paths(ws, [write_safetensors(base / "h.safetensors", half)], "lab/half-precision",
                 message="fp16 export")  # fmt: skip
    import_paths(ws, [write_gguf(base / "q.gguf")], "lab/tiny-gguf", message="Q8_0 quantized")
    return ws


def main(out: Path) -> None:
    with shots.throwaway("mm-library-shot-", stores=True) as tmp:
        app = shots.application()
        ws = build(tmp)
        win = shots.open_window(app, ws, ready=lambda w: w.tree_model.rowCount() > 2)
        flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
        win.tree.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # by size, largest first
        llama = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, "meta/llama-tiny", 1, flags)[0]
        win.tree.expand(llama)
        version = win.proxy.match(win.proxy.index(0, 0), REF_ROLE, "meta/llama-tiny@3", 1, flags)
        win.tree.setCurrentIndex(version[0])
        shots.wait(app, lambda: win.details is not None and not win.runner.running())
        shots.save(win, out, "library.png")
        win.search.setText("chat")
        shots.wait(app, lambda: win.proxy.text == "chat" and not win.runner.running())
        shots.settle(app, 10)
        shots.save(win, out, "library-search.png")
        shots.close(win, ws)


if __name__ == "__main__":
    main(shots.out_dir())
