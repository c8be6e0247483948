"""Storage behind one small protocol: every byte the repository keeps goes through a BlobStore."""

from modelmanager.core.storage import page_cache
from modelmanager.core.storage.base import BlobNotFound, BlobStore, check_key
from modelmanager.core.storage.local import LocalBlobStore

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore", "check_key", "page_cache"]
