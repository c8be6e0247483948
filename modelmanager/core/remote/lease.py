"""A lease lock on a remote whose server has no conditional writes: one holder at a time.

Each contender writes its own lock object ``locks/NAME/TOKEN.json`` (owner and expiry), then
lists ``locks/NAME/``. It holds the lock when it sees no other live lock object; otherwise it
deletes its own and tries again after a random pause. Two contenders can never both hold it:
each lists only after its own write completed, so (on a store with read-after-write consistent
listings: S3 since 2020, MinIO, Ceph RGW, a shared folder) whichever lists second sees the
first. Both seeing each other makes both step back, and the random pauses break the tie.

The lease bounds how long a crashed holder blocks others: a lock object past its expiry is not
live (and is deleted). A holder checks before each write that its lease still covers the
write's whole deadline (:meth:`LeaseLock.check`), so it never writes after others may have
taken over. Expiry compares clocks of different machines: keep them within a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import time
import uuid
from types import TracebackType

from modelmanager.core.storage.base import BlobNotFound, BlobStore
from modelmanager.core.storage.remote import RemoteError
from modelmanager.errors import UserError

#: Seconds a lock object stays live without its holder (a crashed push blocks others this long).
LEASE_SECONDS = 300.0
#: Seconds a contender keeps trying before it gives up with a clear error.
WAIT_SECONDS = 60.0


class LeaseLock:
    """``with LeaseLock(blobs, "claim"):`` holds the remote's lock called ``name``."""

    def __init__(self, blobs: BlobStore, name: str, *, lease: float = LEASE_SECONDS,
                 wait: float = WAIT_SECONDS, where: str = "") -> None:  # fmt: skip
        self.blobs = blobs
        self.folder = f"locks/{name}"
        self.lease = lease
        self.wait = wait
        self.where = where  # for messages: the remote's URL
        self.key = f"{self.folder}/{uuid.uuid4().hex}.json"
        self._since = 0.0  # monotonic time the current lock object was written

    def _live_others(self) -> list[str]:
        """Owners of the other lock objects still within their lease (stale ones are dropped)."""
        owners = []
        now = time.time()
        for key, _size in list(self.blobs.list(self.folder)):
            if key == self.key:
                continue
            try:
                doc = json.loads(self.blobs.get(key))
                expires, owner = float(doc["expires"]), str(doc["owner"])
            except BlobNotFound:
                continue  # released while we looked
            except (ValueError, KeyError, TypeError):
                continue  # not a lock object of ours
            if expires < now:
                with contextlib.suppress(UserError):
                    self.blobs.delete(key)  # its holder died: the lease is over
                continue
            owners.append(owner)
        return owners

    def __enter__(self) -> LeaseLock:
        give_up = time.monotonic() + self.wait
        pause = 0.02
        owner = f"{socket.gethostname()} pid {os.getpid()}"
        while True:
            self._since = time.monotonic()
            doc = {"owner": owner, "expires": time.time() + self.lease}
            self.blobs.put(self.key, json.dumps(doc).encode())
            others = self._live_others()
            if not others:
                return self
            self.blobs.delete(self.key)
            if time.monotonic() > give_up:
                raise RemoteError(f"another push holds this remote's lock ({others[0]}) and "
                                  f"did not let go in {self.wait:.0f} s; try again later",
                                  path=f"{self.where}/{self.folder}")  # fmt: skip
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 1.0)

    def check(self, seconds: float) -> None:
        """Refuse to start a write of ``seconds`` that could end after the lease does."""
        if time.monotonic() - self._since + seconds > self.lease:
            raise RemoteError("this remote's lock ran out before the write; try again",
                              path=f"{self.where}/{self.folder}")  # fmt: skip

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        with contextlib.suppress(UserError):
            self.blobs.delete(self.key)  # left behind: it expires with its lease
