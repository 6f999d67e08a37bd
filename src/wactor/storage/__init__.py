"""Key-value storage scoped by component: the Protocol and its backends (memory, SQLite)."""

from __future__ import annotations

from wactor.storage._base import MAX_KEY_BYTES, StorageBackend, StorageUsage
from wactor.storage._memory import MemoryStorage
from wactor.storage._sqlite import SqliteStorage

__all__ = ["MAX_KEY_BYTES", "MemoryStorage", "SqliteStorage", "StorageBackend", "StorageUsage"]
