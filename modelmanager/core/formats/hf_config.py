"""A Hugging Face model folder's ``config.json``: the model facts it states.

Not a weight format (the file is stored as it is); its facts are read for a version's metadata
and win over the facts of weight files, since the config names the model that loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelmanager.core.formats.jsonstrict import loads_strict
from modelmanager.core.localfiles import open_regular

#: The name (relative to the folder imported) whose facts are read.
NAME = "config.json"
#: Larger files are stored without being read (a real config is a few kilobytes).
MAX_BYTES = 16 * 1024 * 1024


def facts(config: Any) -> dict[str, Any]:
    """Facts of a parsed config: architecture, model type, dtype, framework, parameter count,
    layers, hidden size, vocabulary size and context length."""
    if not isinstance(config, dict):
        return {}
    out: dict[str, Any] = {}
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        out["architecture"] = archs[0]
    for key in ("model_type", "torch_dtype"):
        if isinstance(config.get(key), str):
            out[key] = config[key]
    if "transformers_version" in config:
        out["framework"] = "transformers"
    for key in ("num_parameters", "n_params"):
        if type(config.get(key)) is int:
            out["config_parameters"] = config[key]
    for name, keys in SIZES:
        for key in keys:
            value = config.get(key)
            if type(value) is int and value > 0:
                out.setdefault(name, value)
    return out


#: Size facts (the names a version's metadata gives them) and the config keys that state them
#: (GPT-2 style configs spell them n_layer, n_embd, n_positions).
SIZES = (
    ("num_hidden_layers", ("num_hidden_layers", "n_layer", "num_layers")),
    ("hidden_size", ("hidden_size", "n_embd", "d_model")),
    ("vocab_size", ("vocab_size",)),
    ("max_position_embeddings", ("max_position_embeddings", "n_positions", "n_ctx")),
)

#: The model card of a Hugging Face folder, whose YAML front matter may state these facts.
CARD = "README.md"
#: Front matter keys read from the card (one-line values only: no YAML parser is needed).
CARD_KEYS = ("license", "base_model")
#: A card's front matter is read from its first bytes only.
CARD_HEAD = 64 * 1024


def card_facts(head: str) -> dict[str, str]:
    """``license`` and ``base_model`` from a card's front matter (``---`` lines around YAML);
    a one-item list (``base_model:\n- org/name``) counts as its item."""
    lines = head.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, str] = {}
    for i, line in enumerate(lines[1:], 1):
        if line.strip() == "---":
            break
        key, colon, value = line.partition(":")
        if not colon or key not in CARD_KEYS or key in out:
            continue
        value = value.strip()
        if not value and i + 1 < len(lines) and lines[i + 1].lstrip().startswith("- "):
            value = lines[i + 1].lstrip()[2:].strip()
        value = value.strip("'\"")
        if value and len(value) <= 200:
            out[key] = value
    return out


def read_card_facts(path: Path, size: int, identity: tuple[int, int] | None = None
                    ) -> dict[str, str]:  # fmt: skip
    """The facts of the model card at ``path``; none when it is unreadable or has none."""
    try:
        with open_regular(path, identity) as f:
            return card_facts(f.read(min(size, CARD_HEAD)).decode("utf-8", "replace"))
    except OSError:
        return {}


def read_facts(path: Path, size: int, identity: tuple[int, int] | None = None) -> dict[str, Any]:
    """The facts of the config file at ``path``; none when it is too large, unreadable or not
    JSON (a broken config.json is still stored as it is: it only adds no facts)."""
    if size > MAX_BYTES:
        return {}
    try:
        with open_regular(path, identity) as f:
            return facts(loads_strict(f.read(size)))
    except (OSError, ValueError):
        return {}
