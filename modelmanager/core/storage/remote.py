"""A BlobStore over fsspec: S3-compatible object stores (s3fs), HTTP(S) (read-only) and files.

Objects are uploaded whole (``pipe_file``), never through an open-for-write handle: fsspec
commits a partial object when an exception leaves a ``with fs.open(...)`` block (measured
trap, ../shared/RELIABILITY.md). Whatever a store's own checksums, every chunk read back is
checked against its BLAKE3 id by the caller. Network and permission failures become
:class:`RemoteError`, which names the URL and never any credential.

Every request has a deadline (:meth:`FsspecBlobStore.deadline`). The clients' own timeouts
cover connecting and reading a reply, not sending a body: a server that stops reading an
upload would otherwise hold a push for ever.

``put(..., exclusive=True)`` is atomic where the server honours S3 conditional writes
(``If-None-Match: *``: AWS S3, MinIO, Ceph RGW, moto): :meth:`FsspecBlobStore.conditional_writes`
probes that once per store. Elsewhere it only checks first, and callers that need an atomic
claim take a lease lock around it (``modelmanager.core.remote.lease``).
"""

from __future__ import annotations

import asyncio
import errno
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from modelmanager.core.ids import BytesLike
from modelmanager.core.storage.atomic import as_parts
from modelmanager.core.storage.base import BlobNotFound, check_key
from modelmanager.errors import UserError


class RemoteError(UserError):
    """A remote could not be reached or refused a request."""


#: Seconds a request may take before any byte is counted, and the slowest rate (bytes per
#: second) it is allowed after that; retries inside the client count against the same budget.
BASE_DEADLINE = 120.0
SLOWEST_RATE = 64 * 1024
#: Where the probe for conditional writes writes (and then deletes) one small object.
PROBE_PREFIX = "locks/probe"


class FsspecBlobStore:
    """Blobs under ``root`` of an fsspec file system (``root``: bucket/prefix, URL or path)."""

    def __init__(
        self, fs: Any, root: str, url: str, *, read_only: bool = False,
        base_deadline: float = BASE_DEADLINE, conditional: bool = True,
    ) -> None:  # fmt: skip
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url  # for messages: the remote's URL as the user gave it
        self.read_only = read_only
        self.base_deadline = base_deadline
        # None: not probed yet; False: never used (the remote's setting, or the server ignores it)
        self._conditional: bool | None = None if conditional and not read_only else False

    def conditional_writes(self) -> bool:
        """Whether an exclusive put is atomic here (the server honours ``If-None-Match: *``).

        Probed once: a conditional create of a fresh object, then a second one that must be
        refused. A server that refuses the header (400/501) or ignores it gets False; a
        network failure is an error, not an answer.
        """
        if self._conditional is None:
            key = f"{PROBE_PREFIX}-{uuid.uuid4().hex}.json"
            try:
                self._conditional = self._probe(key)
            finally:
                self.delete(key)
        return self._conditional

    def _probe(self, key: str) -> bool:
        path = self._path(key)
        for attempt in (1, 2):
            try:
                self.fs.pipe_file(path, b"{}", mode="create", timeout=self.deadline())
            except FileExistsError:
                return attempt == 2
            except (NotImplementedError, ValueError, TypeError):
                return False  # a client without conditional writes
            except OSError as e:
                if e.errno in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    return False  # 501 NotImplemented, 400 InvalidArgument, 412 of another kind
                raise self._fail(e, key) from None
            except Exception as e:
                raise self._fail(e, key) from None
        return False  # the second create replaced the first: the header is ignored

    def deadline(self, nbytes: int = 0) -> float:
        """Seconds allowed for a request moving ``nbytes``; passed to fsspec's ``sync``."""
        return self.base_deadline + nbytes / SLOWEST_RATE

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def _fail(self, e: Exception, key: str) -> RemoteError:
        what = type(e).__name__
        if isinstance(e, (TimeoutError, asyncio.TimeoutError)):  # fsspec's FSTimeoutError too
            cause = "no answer in time"
        else:
            cause = f"{what}: {str(e).splitlines()[0][:200] if str(e) else what}"
        return RemoteError(f"remote request failed ({cause})", path=f"{self.url}/{key}")

    def put(
        self, key: str, data: BytesLike | Sequence[BytesLike], *, exclusive: bool = False,
        sync: bool = True,
    ) -> int:  # fmt: skip
        """Upload a whole object. ``exclusive``: FileExistsError when ``key`` exists, atomic
        across writers only where :meth:`conditional_writes` (else it checks first)."""
        if self.read_only:
            raise RemoteError("this remote is read-only (HTTP)", path=self.url)
        path = self._path(key)  # a bad key is the caller's ValueError, not a remote failure
        blob = b"".join(as_parts(data))
        atomic = exclusive and self.conditional_writes()
        if exclusive and not atomic and self.size(key) is not None:
            raise FileExistsError(key)
        try:
            if atomic:
                self.fs.pipe_file(path, blob, mode="create", timeout=self.deadline(len(blob)))
            else:
                self.fs.pipe_file(path, blob, timeout=self.deadline(len(blob)))
        except FileExistsError:
            raise FileExistsError(key) from None  # 412: another writer created it first
        except Exception as e:
            if atomic and self.size(key) is not None:
                raise FileExistsError(key) from None  # 409 ConditionalRequestConflict: raced
            raise self._fail(e, key) from None
        return len(blob)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return bytes(self.fs.cat_file(path, timeout=self.deadline(1 << 26)))
        except FileNotFoundError:
            raise BlobNotFound("no such object on the remote", path=f"{self.url}/{key}") from None
        except Exception as e:
            raise self._fail(e, key) from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        end = None if length < 0 else offset + length
        path = self._path(key)
        if length == 0:  # fsspec reads an empty range (end == start) as "to the end"
            return b""
        try:
            data = self.fs.cat_file(
                path, start=offset, end=end, timeout=self.deadline(max(length, 1 << 26))
            )
            return bytes(data)
        except FileNotFoundError:
            raise BlobNotFound("no such object on the remote", path=f"{self.url}/{key}") from None
        except Exception as e:
            # S3 answers a range that starts at or past the end with 416; a file gives b"".
            size = self.size(key)
            if size is not None and size <= offset:
                return b""
            raise self._fail(e, key) from None

    def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return int(self.fs.info(path, timeout=self.deadline())["size"])
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self._fail(e, key) from None

    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        base = self._path(prefix) if prefix else self.root  # checked before any request
        try:
            found = self.fs.find(base, detail=True, timeout=self.deadline(1 << 26))
        except FileNotFoundError:
            return
        except Exception as e:
            raise self._fail(e, prefix) from None
        start = len(self.root) + 1
        for path, info in found.items():
            if info.get("type", "file") != "file":
                continue
            key = str(path).rstrip("/")[start:]
            try:
                check_key(key)
            except ValueError:
                continue  # a stray name that is no key of ours
            yield key, int(info.get("size") or 0)

    def delete(self, key: str) -> None:
        if self.read_only:
            raise RemoteError("this remote is read-only (HTTP)", path=self.url)
        path = self._path(key)
        try:
            self.fs.rm_file(path, timeout=self.deadline())
        except FileNotFoundError:
            pass
        except Exception as e:
            raise self._fail(e, key) from None

    def flush(self) -> None:
        """Nothing to do: an object store makes each upload durable when it returns."""
