"""S3 keys of a remote: kept in the OS keyring, never in a file of ours, never in a message.

Without keys in the keyring, botocore finds them as usual: the AWS environment variables or
the profile the remote names.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field

from modelmanager.errors import UserError

KEYRING_SERVICE = "modelmanager"


@dataclass(frozen=True)
class S3Keys:
    """An access key id and its secret (the secret never shows in a repr)."""

    key: str
    secret: str = field(repr=False)


def _account(name: str) -> str:
    return f"remote:{name}"


def store_credentials(name: str, access_key: str, secret_key: str) -> None:
    """Keep S3 keys in the OS keyring; a clear error where no keyring backend exists."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, _account(name),
                             json.dumps({"key": access_key, "secret": secret_key}))  # fmt: skip
    except KeyringError as e:
        raise UserError(
            f"no OS keyring to keep the keys of remote {name!r} in ({type(e).__name__}); "
            "use an AWS profile (--profile) or the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "environment variables instead"
        ) from None


def read_credentials(name: str) -> S3Keys | None:
    """The keys kept for remote ``name``, or None (no keyring, nothing kept, unreadable)."""
    try:
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, _account(name))
    except Exception:
        return None
    if not stored:
        return None
    try:
        doc = json.loads(stored)
        return S3Keys(str(doc["key"]), str(doc["secret"]))
    except (ValueError, KeyError, TypeError):
        return None  # not ours: botocore's own lookup (environment, profile) applies


def forget_credentials(name: str) -> None:
    """Drop the keys kept for remote ``name``, if any (no keyring: nothing to drop)."""
    with contextlib.suppress(Exception):
        import keyring

        keyring.delete_password(KEYRING_SERVICE, _account(name))
