"""S3 keys of a remote: kept in the OS keyring, never in a file of ours, never in a message.

Without keys in the keyring, botocore finds them as usual: the AWS environment variables or
the profile the remote names. A keyring that keeps secrets in a plain file (keyrings.alt, which
``keyring`` picks by itself where no OS keyring exists) is used only when chosen explicitly with
``PYTHON_KEYRING_BACKEND``: a secret is never written in plain text silently.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from modelmanager.errors import UserError

KEYRING_SERVICE = "modelmanager"
#: The variable that chooses a keyring backend by name (keyring's own); a choice made there is
#: the user's, so even a plain-file backend is then used.
ENV_BACKEND = "PYTHON_KEYRING_BACKEND"
#: Backends that are no OS keyring: none at all, or secrets in a plain (or password-prompting)
#: file of keyrings.alt.
_NOT_OS = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


@dataclass(frozen=True)
class S3Keys:
    """An access key id and its secret (the secret never shows in a repr)."""

    key: str
    secret: str = field(repr=False)


def _account(name: str) -> str:
    return f"remote:{name}"


def _backend_name(backend: Any) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def keyring_problem() -> str | None:
    """Why S3 keys cannot be kept in an OS keyring here (one line), or None when they can."""
    try:
        import keyring

        backend = keyring.get_keyring()
    except Exception as e:  # a broken keyring install or configuration: the same answer
        return f"the keyring cannot be used ({type(e).__name__}: {e})"
    chosen = os.environ.get(ENV_BACKEND, "")
    inner = list(getattr(backend, "backends", [])) or [backend]  # a chainer: its first is used
    name = _backend_name(inner[0])
    if name.startswith(_NOT_OS[:2]):
        return "no OS keyring on this machine"
    if name.startswith(_NOT_OS[2]) and name != chosen:
        return (f"no OS keyring on this machine (only {name}, which keeps secrets in a file; "
                f"set {ENV_BACKEND}={name} to use it anyway)")  # fmt: skip
    return None


def no_keyring_error(name: str, problem: str) -> UserError:
    """The one line that says keys cannot be kept and what to use instead."""
    return UserError(
        f"{problem}: the keys of remote {name!r} are not kept; use an AWS profile (--profile) "
        "or the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables instead"
    )


def store_credentials(name: str, access_key: str, secret_key: str) -> None:
    """Keep S3 keys in the OS keyring; a clear error where there is none (never a file)."""
    problem = keyring_problem()
    if problem:
        raise no_keyring_error(name, problem)
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, _account(name),
                             json.dumps({"key": access_key, "secret": secret_key}))  # fmt: skip
    except KeyringError as e:
        raise no_keyring_error(name, f"no OS keyring ({type(e).__name__})") from None


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
