"""Storage behind one small protocol: every byte the repository keeps goes through a BlobStore."""

from modelmanager.core.storage import page_cache
from modelmanager.core.storage.base import (
    BlobNotFound,
    BlobStore,
    Capacity,
    FolderStore,
    StoreFactory,
    capacity_of,
    check_key,
)
from modelmanager.core.storage.local import LocalBlobStore

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "Capacity",
    "FolderStore",
    "LocalBlobStore",
    "StoreFactory",
    "capacity_of",
    "check_key",
    "page_cache",
]
