"""A real model folder whose names and metadata hold bidi, NEL, U+2028 and ESC (issue 15)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

RLO, NEL, LSEP, ESC = "\u202e", "\x85", "\u2028", "\x1b"
# Tensor names may not hold C0 controls (refused at import); bidi, NEL and U+2028 are allowed.
TENSORS = {
    f"layer.0.{RLO}thgiew": np.arange(64, dtype=np.float32),
    f"layer.1.next{NEL}line": np.ones(32, dtype=np.float32),
    f"layer.2.line{LSEP}sep": np.zeros(16, dtype=np.float32),
}
ESCAPED_TENSORS = ["layer.0.\\u202ethgiew", "layer.1.next\\x85line", "layer.2.line\\u2028sep"]
ARCH = f"Evil{RLO}MLTxetnoCroF{ESC}[2J"  # config.json's architecture: a version's metadata
ESCAPED_ARCH = "Evil\\u202eMLTxetnoCroF\\x1b[2J"
FILE = f"model{RLO}gpj.safetensors"  # a file name inside the version
ESCAPED_FILE = "model\\u202egpj.safetensors"
MESSAGE = f"searchable first{LSEP}second{NEL}third{ESC}[31m"
ESCAPED_MESSAGE = "searchable first\\u2028second\\x85third\\x1b[31m"
HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def hostile_folder(root: Path, scale: float = 1.0) -> Path:
    """A safetensors file (written by the safetensors library) and a config.json, in ``root``."""
    root.mkdir()
    save_file({k: v * scale for k, v in TENSORS.items()}, str(root / FILE),
              metadata={"format": "pt", f"note{RLO}": f"value{ESC}{LSEP}"})  # fmt: skip
    (root / "config.json").write_text(json.dumps({"architectures": [ARCH]}), encoding="utf-8")
    return root


def raw_hidden(text: str) -> list[str]:
    """The control, format and separator characters of ``text`` (line feeds aside), as hex."""
    return [hex(ord(ch)) for ch in text if ch != "\n" and unicodedata.category(ch) in HIDDEN]
