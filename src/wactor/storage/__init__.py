"""Key-value storage scoped by component: the Protocol and its backends (memory, SQLite, NATS).

The NATS KV backend is imported on first use, so local storage never loads a NATS client.
"""

from __future__ import annotations

import typing

from wactor._lazy import lazy_exports as _lazy_exports
from wactor.storage._base import MAX_KEY_BYTES, StorageBackend, StorageUsage
from wactor.storage._memory import MemoryStorage
from wactor.storage._sqlite import SqliteStorage

if typing.TYPE_CHECKING:
    from wactor.storage._nats_kv import NatsKvStorage

__all__ = [
    "MAX_KEY_BYTES",
    "MemoryStorage",
    "NatsKvStorage",
    "SqliteStorage",
    "StorageBackend",
    "StorageUsage",
]

__getattr__ = _lazy_exports(__name__, {"wactor.storage._nats_kv": ("NatsKvStorage",)})
