"""Host functions of ``airssys:core/host-services@1.0.0``."""

from __future__ import annotations

import time
from typing import Any

import wasmtime
from wasmtime.component import Variant

from wactor.errors import ComponentError
from wactor.wasm._calling import add_host_func
from wactor.wasm._context import DeadlineExceeded, call_deadline, current_context
from wactor.wasm._records import (
    component_id_from,
    component_id_record,
    err,
    error_variant,
    ok,
    record,
    timestamp_record,
)

__all__ = ["INTERFACE", "MAX_SLEEP_MS", "define_services"]

INTERFACE = "airssys:core/host-services@1.0.0"
MAX_SLEEP_MS = 60_000
"""A single ``sleep-millis`` is capped; the call's own wall-clock limit still applies."""


def _log(level: str, message: str, context: list[tuple[str, str]] | None) -> None:
    current_context().log(level, message, context or [])


def _current_time() -> Any:
    return timestamp_record(time.time_ns())


def _current_time_millis() -> int:
    return time.time_ns() // 1_000_000


def _sleep_millis(duration_ms: int) -> None:
    # A guest that sleeps is never run on the loop's thread again (the host is told first);
    # on a worker thread sleeping blocks only this component. A sleep never outlasts the
    # call's wall-clock limit: past the deadline the guest resumes only to be interrupted at
    # its next epoch check.
    current_context().will_sleep()
    wanted = min(duration_ms, MAX_SLEEP_MS) / 1000
    remaining = call_deadline() - time.monotonic()
    if wanted <= remaining:
        time.sleep(wanted)
        return
    time.sleep(max(0.0, remaining))
    # Past the deadline: end the call here rather than rely on the next epoch tick.
    raise DeadlineExceeded(duration_ms)


def _list_components() -> list[Any]:
    return [component_id_record(cid) for cid in current_context().list_components()]


def _get_component_metadata(target: Any) -> Variant:
    try:
        cid = component_id_from(target)
    except ValueError as exc:
        return err("invalid-state", str(exc))
    try:
        info = current_context().component_info(cid)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the guest's err
        return error_variant(exc, ComponentError, "invalid-state")
    return ok(
        record(
            id=component_id_record(info.id),
            name=info.name,
            version=info.version,
            health=info.health,
        )
    )


def define_services(root: wasmtime.component.LinkerInstance) -> None:
    """Define every function of the services interface in ``root``."""
    with root.add_instance(INTERFACE) as inst:
        add_host_func(inst, "log", _log)
        add_host_func(inst, "current-time", _current_time)
        add_host_func(inst, "current-time-millis", _current_time_millis)
        add_host_func(inst, "sleep-millis", _sleep_millis)
        add_host_func(inst, "list-components", _list_components)
        add_host_func(inst, "get-component-metadata", _get_component_metadata)
