"""Every default location ModelManager uses; the one module tests redirect (via environment)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "modelmanager"

#: Environment variables that override the defaults (documented in the README).
ENV_REPO = "MODELMANAGER_REPO"
ENV_CACHE = "MODELMANAGER_CACHE"
ENV_DATA = "MODELMANAGER_DATA"
ENV_LOGS = "MODELMANAGER_LOGS"


def data_dir() -> Path:
    """The per-user data folder (platformdirs), or MODELMANAGER_DATA."""
    override = os.environ.get(ENV_DATA)
    return Path(override) if override else platformdirs.user_data_path(APP_NAME, appauthor=False)


def cache_dir() -> Path:
    """The per-user cache folder: catalogs and other things that can be rebuilt."""
    override = os.environ.get(ENV_CACHE)
    return Path(override) if override else platformdirs.user_cache_path(APP_NAME, appauthor=False)


def default_repo_path() -> Path:
    """The repository used without --repo: MODELMANAGER_REPO, else one in the data folder."""
    override = os.environ.get(ENV_REPO)
    return Path(override) if override else data_dir() / "repository"


def log_dir() -> Path:
    """The per-user log folder: MODELMANAGER_LOGS, else "logs" in a redirected data folder
    (so a test's or a sandbox's logs stay beside its data), else platformdirs' log folder."""
    override = os.environ.get(ENV_LOGS)
    if override:
        return Path(override)
    if os.environ.get(ENV_DATA):
        return data_dir() / "logs"
    return platformdirs.user_log_path(APP_NAME, appauthor=False)
