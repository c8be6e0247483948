"""A Hugging Face model folder's ``config.json`` and model card: the model facts they state.

Not weight formats (the files are stored as they are, as generic files); their facts are read
for a version's metadata and win over the facts of weight files, since the config and the
card name the model that loads them (:func:`index`, ``FileIndex.facts_win``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelmanager.core.formats.base import FileIndex
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
    if isinstance(archs, list) and archs and _is_text(archs[0]):
        out["architecture"] = archs[0]
    for key in ("model_type", "torch_dtype"):
        if _is_text(config.get(key)):
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


def _is_text(value: Any) -> bool:
    """A string a version can store: JSON's ``\\ud800`` escapes give lone surrogates, which
    no UTF-8 manifest or catalog can hold (such a fact is left out, the file still stored)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def index(name: str, path: Path, size: int, identity: tuple[int, int] | None = None
          ) -> FileIndex | None:  # fmt: skip
    """A generic index stating the facts of the folder's own config.json or model card (its
    ``name`` in the version, not a subfolder's); None for any other file."""
    if name == NAME:
        return FileIndex("generic", facts=read_facts(path, size, identity), facts_win=True)
    if name == CARD:
        return FileIndex("generic", facts=read_card_facts(path, size, identity), facts_win=True)
    return None
