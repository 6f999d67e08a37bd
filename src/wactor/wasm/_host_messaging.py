"""Host functions of ``airssys:core/host-messaging@1.0.0``."""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime.component import Variant

from wactor._ids import ComponentId
from wactor.errors import MessagingError, SecurityError
from wactor.wasm._calling import add_host_func
from wactor.wasm._context import current_context
from wactor.wasm._records import component_id_from, component_id_record, err, error_variant, ok

__all__ = ["INTERFACE", "define_messaging"]

INTERFACE = "airssys:core/host-messaging@1.0.0"


def _target(value: Any) -> ComponentId | Variant:
    try:
        return component_id_from(value)
    except ValueError as exc:
        return err("invalid-message", str(exc))


def messaging_err(exc: Exception) -> Variant:
    """Translate a host-side failure into the guest's ``messaging-error``.

    A messaging error is its own case; a refusal by the component's capabilities (or its rate)
    is ``delivery-failed`` saying ``denied``; anything else is ``delivery-failed``.
    """
    if isinstance(exc, SecurityError):
        return err("delivery-failed", "denied: " + " ".join(str(exc).splitlines()))
    return error_variant(exc, MessagingError, "delivery-failed")


def _send(target: Any, payload: bytes) -> Variant:
    cid = _target(target)
    if isinstance(cid, Variant):
        return cid
    try:
        current_context().send(cid, payload)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the guest's err
        return messaging_err(exc)
    return ok()


def _request(target: Any, payload: bytes, timeout_ms: int) -> Variant:
    cid = _target(target)
    if isinstance(cid, Variant):
        return cid
    try:
        return ok(current_context().request(cid, payload, timeout_ms))
    except Exception as exc:  # noqa: BLE001
        return messaging_err(exc)


def _cancel_request(request_id: str) -> Variant:
    try:
        current_context().cancel_request(request_id)
    except Exception as exc:  # noqa: BLE001
        return messaging_err(exc)
    return ok()


def _broadcast(targets: list[Any], payload: bytes) -> Variant:
    ids: list[ComponentId] = []
    for value in targets:
        cid = _target(value)
        if isinstance(cid, Variant):
            return cid
        ids.append(cid)
    try:
        current_context().broadcast(ids, payload)
    except Exception as exc:  # noqa: BLE001
        return messaging_err(exc)
    return ok()


def _self_id() -> Any:
    return component_id_record(current_context().component_id)


def define_messaging(root: wasmtime.component.LinkerInstance) -> None:
    """Define every function of the messaging interface in ``root``."""
    with root.add_instance(INTERFACE) as inst:
        add_host_func(inst, "send", _send)
        add_host_func(inst, "request", _request)
        add_host_func(inst, "cancel-request", _cancel_request)
        add_host_func(inst, "broadcast", _broadcast)
        add_host_func(inst, "self-id", _self_id)
