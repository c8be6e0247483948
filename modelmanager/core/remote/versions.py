"""Which version is which across repositories whose numbers differ.

Two repositories can both make a ``shared@1`` of their own; when both push, one of them lands
on the remote under another number (``shared@2``). So a version is identified across sides by
its content, not its number: two manifests are the same version when they are equal once their
number and parent are set aside (the same files, chunks, tensors, message, metadata and
creation time). Nothing is recorded: the identity is recomputed from the manifests each side
holds (a remote's come from the local cache once read), so it holds for any client.
"""

from __future__ import annotations

import dataclasses

from modelmanager.core.ids import content_id
from modelmanager.core.repo.manifest import Manifest
from modelmanager.core.repo.versions import VersionStore, manifest_key
from modelmanager.errors import IntegrityError, NotFoundError


def version_identity(manifest: Manifest) -> str:
    """The content id of ``manifest`` with its number and parent set aside."""
    return content_id(dataclasses.replace(manifest, seq=1, parent=None).to_bytes())


def read_version(store: VersionStore, model: str, seq: int) -> Manifest | None:
    """Version ``seq`` of ``model``, or None when it is absent or damaged (verify reports that)."""
    try:  # by key: a remote's cached manifests then cost no request
        return store.read_manifest_key(manifest_key(model, seq))
    except (NotFoundError, IntegrityError):
        return None


def find_version(store: VersionStore, manifest: Manifest, hint: int | None = None) -> int | None:
    """The number under which ``store`` holds the version ``manifest`` is, or None.

    ``hint`` (usually the same number) is tried first; the other versions only when it is not.
    """
    wanted = version_identity(manifest)
    numbers = store.version_numbers(manifest.model)
    if hint is not None and hint in numbers:
        numbers.remove(hint)
        numbers.insert(0, hint)
    for seq in numbers:
        other = read_version(store, manifest.model, seq)
        if other is not None and version_identity(other) == wanted:
            return seq
    return None


def translate_parent(
    source: VersionStore, target: VersionStore, manifest: Manifest, seq: int
) -> int | None:
    """The parent of ``manifest`` as the ``target`` side numbers it, for a copy numbered ``seq``.

    The target's number of the same parent version when it holds it. When it does not, the
    number as it is, unless the source shows that number names another version on the
    target (then None, so a parent never names another repository's version). A source
    without the parent (pushed alone) cannot tell: the number stays.
    """
    if manifest.parent is None:
        return None
    there: int | None = manifest.parent
    parent = read_version(source, manifest.model, manifest.parent)
    if parent is not None:
        found = find_version(target, parent, manifest.parent)
        if found is not None:
            there = found
        elif manifest.parent in target.version_numbers(manifest.model):
            there = None
    return there if there is not None and there < seq else None


def numbered(manifest: Manifest, seq: int, parent: int | None) -> Manifest:
    """``manifest`` as version ``seq`` with ``parent``: the copy the receiving side stores."""
    return dataclasses.replace(manifest, seq=seq, parent=parent)
