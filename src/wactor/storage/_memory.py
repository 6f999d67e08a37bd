"""The in-process reference backend; also the test double for the layers above storage."""

from __future__ import annotations

import threading

from wactor.errors import QuotaExceededError, StorageIOError
from wactor.storage._base import StorageUsage, encode_key, encode_prefix

__all__ = ["MemoryStorage"]


class _Scope:
    """One component's keys and its running total of used bytes."""

    __slots__ = ("entries", "used")

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}
        self.used = 0


_EMPTY = _Scope()  # never written to: see MemoryStorage._scope


class MemoryStorage:
    """Keys and values in a dict per component, guarded by one lock; gone when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, _Scope] = {}
        self._closed = False

    def _scope(self, component: str, *, create: bool = False) -> _Scope:
        # Callers hold the lock. Reads of a component that never wrote see a shared empty scope,
        # so that reading does not allocate.
        if self._closed:
            raise StorageIOError("memory storage is closed", component=component)
        scope = self._scopes.get(component)
        if scope is None:
            if not create:
                return _EMPTY
            scope = self._scopes[component] = _Scope()
        return scope

    def get(self, component: str, key: str) -> bytes | None:
        """Return the value of ``key``, or ``None`` when it is not set."""
        encode_key(component, key)
        with self._lock:
            return self._scope(component).entries.get(key)

    def set(self, component: str, key: str, value: bytes, *, quota: int) -> None:
        """Store ``value`` under ``key``; past the quota, raise and change nothing."""
        key_size = len(encode_key(component, key))
        data = bytes(value)  # a bytearray would let the caller change stored data later
        with self._lock:
            scope = self._scope(component, create=True)
            old = scope.entries.get(key)
            freed = 0 if old is None else key_size + len(old)
            used = scope.used - freed + key_size + len(data)
            if used > quota:
                raise QuotaExceededError(component, quota, used)
            scope.entries[key] = data
            scope.used = used

    def delete(self, component: str, key: str) -> bool:
        """Remove ``key``; tell whether it was there."""
        key_size = len(encode_key(component, key))
        with self._lock:
            scope = self._scope(component)
            old = scope.entries.pop(key, None)
            if old is None:
                return False
            scope.used -= key_size + len(old)
            return True

    def exists(self, component: str, key: str) -> bool:
        """Tell whether ``key`` is set."""
        encode_key(component, key)
        with self._lock:
            return key in self._scope(component).entries

    def list_keys(self, component: str, prefix: str | None = None) -> list[str]:
        """Return the component's keys starting with ``prefix``, sorted by code point."""
        encode_prefix(component, prefix)
        # For valid strings a str prefix is exactly a UTF-8 byte prefix, and code point order is
        # UTF-8 byte order, so this agrees with the SQLite backend.
        start = prefix or ""
        with self._lock:
            keys = [k for k in self._scope(component).entries if k.startswith(start)]
        return sorted(keys)

    def usage(self, component: str, *, quota: int) -> StorageUsage:
        """Return the component's used bytes and key count, with ``quota`` echoed back."""
        with self._lock:
            scope = self._scope(component)
            return StorageUsage(scope.used, quota, len(scope.entries))

    def close(self) -> None:
        """Drop every value; idempotent. Later calls raise ``StorageIOError``."""
        with self._lock:
            self._closed = True
            self._scopes.clear()
