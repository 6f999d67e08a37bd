"""Key-value storage scoped by component: the Protocol and its backends (memory, SQLite, NATS)."""

from __future__ import annotations

from wactor.storage._base import MAX_KEY_BYTES, StorageBackend, StorageUsage
from wactor.storage._memory import MemoryStorage
from wactor.storage._nats_kv import NatsKvStorage
from wactor.storage._sqlite import SqliteStorage

__all__ = [
    "MAX_KEY_BYTES",
    "MemoryStorage",
    "NatsKvStorage",
    "SqliteStorage",
    "StorageBackend",
    "StorageUsage",
]
