"""The blob stores every conformance test runs against, each on its own empty folder or prefix.

local           LocalBlobStore: the repository folder and every device root
shared-folder   a file:// remote, opened as the application opens it
s3              an s3:// remote on a loopback moto server, opened as the application opens it
faulty-wrapper  tests.support.faulty.FaultyBlobStore with no fault set: it must be transparent
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmanager.core.storage import BlobStore, LocalBlobStore
from tests.support.faulty import FaultyBlobStore
from tests.support.s3 import BUCKET, TEST_KEYS, create_bucket, moto_server

STORES = ["local", "shared-folder", "s3", "faulty-wrapper"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One loopback S3 server for the whole run (each test uses its own prefix)."""
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    with moto_server() as endpoint:
        create_bucket(endpoint)
        yield endpoint


@pytest.fixture(params=STORES)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> BlobStore:
    """An empty store of each kind."""
    from modelmanager.services.remotes import RemoteSpec, open_remote

    kind = request.param
    if kind == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if kind == "faulty-wrapper":
        return FaultyBlobStore(LocalBlobStore(tmp_path / "blobs"))
    if kind == "shared-folder":
        return open_remote(RemoteSpec("shared", f"file://{tmp_path / 'shared'}")).blobs
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)
    return open_remote(RemoteSpec("team", f"s3://{BUCKET}/{prefix}", endpoint=endpoint)).blobs
