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
    """Facts of a parsed config: architecture, model type, dtype, framework, parameter count."""
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
    return out


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
