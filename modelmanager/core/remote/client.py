"""The one factory of a remote's blob store: fsspec for S3 and HTTP(S), the local store for a
shared folder (its atomic, synced writes rather than fsspec's in-place ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelmanager.core.remote.credentials import read_credentials
from modelmanager.core.remote.spec import RemoteSpec
from modelmanager.core.storage.base import BlobStore
from modelmanager.core.storage.local import LocalBlobStore
from modelmanager.core.storage.remote import FsspecBlobStore
from modelmanager.errors import UserError


def s3_filesystem(spec: RemoteSpec) -> Any:
    """An s3fs file system for ``spec``: keyring keys, else botocore's usual lookup (AWS
    environment, the named profile); requests retried ``spec.retries`` times in all."""
    import s3fs  # type: ignore[import-untyped]

    options: dict[str, Any] = {}
    keys = read_credentials(spec.name)
    if keys:
        options.update(key=keys.key, secret=keys.secret)
    if spec.profile:
        options["profile"] = spec.profile
    if spec.endpoint:
        options["client_kwargs"] = {"endpoint_url": spec.endpoint}
    options["config_kwargs"] = {"retries": {"max_attempts": spec.retries, "mode": "standard"}}
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    # s3fs wraps each call in a retry loop of its own (5 by default) around botocore's: without
    # this a reset connection is tried retries x 5 times before the push fails.
    fs.retries = spec.retries
    return fs


def http_filesystem() -> Any:
    """An fsspec HTTP(S) file system (read-only use: a remote behind a plain web server)."""
    import fsspec  # type: ignore[import-untyped]

    return fsspec.filesystem("http", skip_instance_cache=True)


def open_blob_store(spec: RemoteSpec) -> BlobStore:
    """The blob store a remote is read and written through; nothing is downloaded yet."""
    scheme, sep, rest = spec.url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise UserError(f"unsupported remote URL {spec.url!r}")
    if scheme == "s3":
        return FsspecBlobStore(s3_filesystem(spec), rest, spec.url,
                               conditional=spec.conditional_writes)  # fmt: skip
    if scheme in ("http", "https"):
        return FsspecBlobStore(http_filesystem(), spec.url, spec.url, read_only=True)
    if scheme == "file":
        return LocalBlobStore(Path(rest))
    raise UserError(f"unsupported remote URL {spec.url!r}")
