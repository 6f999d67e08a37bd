"""Host functions of ``airssys:core/storage@1.0.0``: keys always scoped to the caller.

``get`` and ``set`` are what a stateful guest calls on every message, so they are written out
(context, backend, one call, one result) rather than going through ``_guarded`` with a closure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime.component import Variant

from wactor.errors import QuotaExceededError, StorageError
from wactor.storage import StorageBackend
from wactor.wasm._calling import add_host_func
from wactor.wasm._context import GuestContext, current_context
from wactor.wasm._records import err, error_variant, ok, record

__all__ = ["INTERFACE", "define_storage"]

INTERFACE = "airssys:core/storage@1.0.0"

_OK = ok()  # the result of every successful set and delete; lowering only reads it


def _not_granted(ctx: GuestContext) -> Variant:
    return err("io-error", f"{ctx.component_id}: no storage capability granted")


def _failed(ctx: GuestContext, exc: Exception) -> Variant:
    """The guest's ``err`` for ``exc``; a quota breach is audited as well."""
    if isinstance(exc, QuotaExceededError):
        ctx.report("quota-breach", action="storage.set", reason=str(exc))
    return error_variant(exc, StorageError, "io-error")


def _guarded(op: Callable[[StorageBackend, str, int], Any]) -> Variant:
    ctx = current_context()
    backend = ctx.storage
    if backend is None:
        return _not_granted(ctx)
    try:
        return ok(op(backend, str(ctx.component_id), ctx.storage_quota))
    except Exception as exc:  # noqa: BLE001 - every failure, a host bug too, is the guest's err
        return _failed(ctx, exc)


def _get(key: str) -> Variant:
    ctx = current_context()
    backend = ctx.storage
    if backend is None:
        return _not_granted(ctx)
    try:
        return ok(backend.get(str(ctx.component_id), key))
    except Exception as exc:  # noqa: BLE001 - every failure, a host bug too, is the guest's err
        return _failed(ctx, exc)


def _set(key: str, value: bytes) -> Variant:
    ctx = current_context()
    backend = ctx.storage
    if backend is None:
        return _not_granted(ctx)
    try:
        backend.set(str(ctx.component_id), key, value, quota=ctx.storage_quota)
    except Exception as exc:  # noqa: BLE001 - every failure, a host bug too, is the guest's err
        return _failed(ctx, exc)
    return _OK


def _delete(key: str) -> Variant:
    def op(b: StorageBackend, c: str, q: int) -> None:
        b.delete(c, key)

    return _guarded(op)


def _exists(key: str) -> Variant:
    return _guarded(lambda b, c, q: b.exists(c, key))


def _list_keys(prefix: str | None) -> Variant:
    return _guarded(lambda b, c, q: b.list_keys(c, prefix))


def _usage() -> Variant:
    def op(b: StorageBackend, c: str, q: int) -> Any:
        u = b.usage(c, quota=q)
        return record(used_bytes=u.used_bytes, quota_bytes=u.quota_bytes, key_count=u.key_count)

    return _guarded(op)


def define_storage(root: wasmtime.component.LinkerInstance) -> None:
    """Define every function of the storage interface in ``root``."""
    with root.add_instance(INTERFACE) as inst:
        add_host_func(inst, "get", _get)
        add_host_func(inst, "set", _set)
        add_host_func(inst, "delete", _delete)
        add_host_func(inst, "exists", _exists)
        add_host_func(inst, "list-keys", _list_keys)
        add_host_func(inst, "usage", _usage)
