"""The storage seam: the Protocol every key-value backend implements, and its shared rules.

Keys are scoped by component: a backend stores ``(component, key)`` pairs and no key, prefix or
listing of one component can reach another's. Values are opaque bytes. Usage counts, per
component, ``len(key as UTF-8) + len(value)`` over its keys; a write that would take usage past
the caller's quota fails with ``QuotaExceededError`` and changes nothing. Backends are synchronous
and thread-safe: the host calls them from many worker threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from wactor.errors import InvalidKeyError

__all__ = ["MAX_KEY_BYTES", "StorageBackend", "StorageUsage", "encode_key", "encode_prefix"]

MAX_KEY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class StorageUsage:
    """One component's storage footprint (the WIT ``storage-usage`` record)."""

    used_bytes: int
    quota_bytes: int
    key_count: int


class StorageBackend(Protocol):
    """A thread-safe key-value store scoped by component id."""

    def get(self, component: str, key: str) -> bytes | None:
        """Return the value of ``key``, or ``None`` when it is not set."""
        ...

    def set(self, component: str, key: str, value: bytes, *, quota: int) -> None:
        """Store ``value`` under ``key``; past the quota, raise and change nothing."""
        ...

    def delete(self, component: str, key: str) -> bool:
        """Remove ``key``; tell whether it was there."""
        ...

    def exists(self, component: str, key: str) -> bool:
        """Tell whether ``key`` is set."""
        ...

    def list_keys(self, component: str, prefix: str | None = None) -> list[str]:
        """Return the component's keys starting with ``prefix``, sorted by code point."""
        ...

    def usage(self, component: str, *, quota: int) -> StorageUsage:
        """Return the component's used bytes and key count, with ``quota`` echoed back."""
        ...

    def close(self) -> None:
        """Release the backend's resources; idempotent. Later calls raise ``StorageIOError``."""
        ...


def encode_key(component: str, key: str) -> bytes:
    """Return ``key`` as UTF-8 after checking it; raise ``InvalidKeyError`` in one line.

    A key is any non-empty string of at most ``MAX_KEY_BYTES`` UTF-8 bytes. NUL, ``/``, ``..``
    and any other character are fine: the key is opaque and lives inside the caller's scope.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(
            f"{component}: storage key must be a string, not {type(key).__name__}",
            component=component,
        )
    if not key:
        raise InvalidKeyError(f"{component}: storage key must not be empty", component=component)
    data = _utf8(component, key, "key")
    if len(data) > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"{component}: storage key is {len(data)} bytes of UTF-8, at most {MAX_KEY_BYTES}",
            component=component,
        )
    return data


def encode_prefix(component: str, prefix: str | None) -> bytes:
    """Return ``prefix`` as UTF-8 (``None`` means every key); raise ``InvalidKeyError``."""
    if prefix is None:
        return b""
    if not isinstance(prefix, str):
        raise InvalidKeyError(
            f"{component}: storage key prefix must be a string, not {type(prefix).__name__}",
            component=component,
        )
    return _utf8(component, prefix, "key prefix")


def _utf8(component: str, text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(
            f"{component}: storage {what} is not valid Unicode "
            f"(lone surrogate at index {exc.start})",
            component=component,
        ) from None
