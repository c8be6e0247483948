"""A remote's description: its URL and, for S3, an endpoint, an AWS profile, a retry budget and
whether version numbers are claimed with conditional writes."""

from __future__ import annotations

from dataclasses import dataclass

from modelmanager.errors import UserError

SCHEMES = ("s3", "http", "https", "file")
#: Attempts per S3 request, the first included, before a transfer fails (botocore's standard
#: mode ``max_attempts`` and s3fs's own retry loop around it).
DEFAULT_RETRIES = 5
MAX_RETRIES = 20


@dataclass(frozen=True)
class RemoteSpec:
    """A named remote: its URL and, for S3, an endpoint (MinIO, Ceph), a profile and retries."""

    name: str
    url: str
    endpoint: str | None = None
    profile: str | None = None
    retries: int = DEFAULT_RETRIES
    #: Claim version numbers with S3 conditional writes (``If-None-Match: *``) when the server
    #: honours them (probed); False always uses the lease lock (a server that mishandles them).
    conditional_writes: bool = True

    def __post_init__(self) -> None:
        r = self.retries
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_RETRIES:
            raise UserError(f"retries must be a whole number from 1 to {MAX_RETRIES}, not {r!r}")
        if not isinstance(self.conditional_writes, bool):
            raise UserError(f"conditional_writes must be true or false, not "
                            f"{self.conditional_writes!r}")  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """The remote as the fronts' JSON names it (no credential is ever part of it)."""
        return {"name": self.name, "url": self.url, "endpoint": self.endpoint,
                "profile": self.profile, "retries": self.retries,
                "read_only": self.read_only}  # fmt: skip

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def read_only(self) -> bool:
        return self.scheme in ("http", "https")
