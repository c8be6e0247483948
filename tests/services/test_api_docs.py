"""Every ```python example of docs/python-api.md runs, in order, as written.

The page is what a user copies. The examples name ``llama-3-8b@prod``: the test stores a small
model under that name (a bf16 safetensors file and a config.json, as a Llama folder has) in a
repository that MODELMANAGER_REPO names, so the examples need no ``repo=``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the page's examples load with framework="torch"

import torch
from safetensors.torch import save_file

from modelmanager import paths
from modelmanager.services import init_repository
from modelmanager.services.importing import import_paths

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def test_every_example_of_the_python_api_page_runs_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "llama"
    folder.mkdir()
    torch.manual_seed(0)
    save_file({"model.embed_tokens.weight": torch.randn(256, 64).bfloat16(),
               "model.norm.weight": torch.ones(64).bfloat16()},
              str(folder / "model.safetensors"))  # fmt: skip
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    (folder / "config.json").write_text(json.dumps(config))
    ws = init_repository(tmp_path / "repo")
    import_paths(ws, [folder], "llama-3-8b", labels=("prod",))
    ws.close()
    monkeypatch.setenv(paths.ENV_REPO, str(tmp_path / "repo"))
    blocks = examples()
    assert len(blocks) >= 5
    scope: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), scope)  # the page's own examples
