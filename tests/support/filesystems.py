"""A folder on another file system than ``tmp_path`` (a tmpfs), for tests of devices that do
or do not share one: every folder under ``tmp_path`` is on the same file system."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Where a tmpfs usually is on Linux; a test needing another file system skips without one.
TMPFS = Path("/dev/shm")


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on a file system other than ``tmp_path``'s, removed afterwards."""
    if not TMPFS.is_dir() or os.stat(TMPFS).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (a tmpfs at /dev/shm)")
    folder = Path(tempfile.mkdtemp(prefix="mm-other-fs-", dir=TMPFS))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
