"""Build and read the WIT records of ``airssys:core/types`` as component values."""

from __future__ import annotations

from typing import Any

from wasmtime.component import Record, Variant

from wactor._ids import ComponentId
from wactor.errors import RequestTimeoutError, TargetNotFoundError, WactorError
from wactor.messaging._envelope import Envelope

__all__ = [
    "component_id_from",
    "component_id_record",
    "config_record",
    "err",
    "error_variant",
    "message_record",
    "ok",
    "record",
    "timestamp_record",
]


def record(**fields: Any) -> Record:
    """Make a record; ``snake_case`` argument names become the WIT's ``kebab-case`` fields."""
    out = Record()
    for name, value in fields.items():
        out.__dict__[name.replace("_", "-")] = value
    return out


def ok(value: Any = None) -> Variant:
    """The ``ok`` case of a WIT ``result``."""
    return Variant("ok", value)


def err(case: str, detail: Any = None) -> Variant:
    """The ``err`` case of a WIT ``result`` holding the variant ``case(detail)``."""
    return Variant("err", Variant(case, detail))


_BARE_CASES = frozenset(
    {"queue-full", "quota-exceeded", "timeout", "already-initialized", "not-initialized"}
)
"""The cases of the WIT error variants that carry no detail."""


def error_variant(exc: BaseException, family: type[WactorError], otherwise: str) -> Variant:
    """The ``err`` a host function answers ``exc`` with, in the WIT variant of ``family``.

    An error of ``family`` is its own ``wit_case``; any other failure is the case ``otherwise``.
    The detail is the error's message on one line, or what the case names (the component id of
    ``target-not-found``, the correlation id of ``correlation-timeout``). An exception that is
    no wactor error is a host bug: the guest learns only its type.
    """
    case = exc.wit_case if isinstance(exc, family) and exc.wit_case else otherwise
    if case in _BARE_CASES:
        return err(case)
    if case == "target-not-found" and isinstance(exc, TargetNotFoundError):
        try:
            return err(case, component_id_record(ComponentId.parse(exc.target)))
        except ValueError:
            case = otherwise
    if case == "correlation-timeout" and isinstance(exc, RequestTimeoutError):
        return err(case, exc.correlation_id or "")
    if not isinstance(exc, WactorError):
        return err(case, f"internal error: {type(exc).__name__}")
    return err(case, " ".join(str(exc).splitlines()))


def component_id_record(cid: ComponentId) -> Record:
    """A ``component-id`` record."""
    return record(namespace=cid.namespace, name=cid.name, instance=cid.instance)


def component_id_from(value: Any) -> ComponentId:
    """Read a ``component-id`` record; raise ``ValueError`` if it names no valid id."""
    return ComponentId.parse(
        f"{value.__dict__['namespace']}/{value.__dict__['name']}/{value.__dict__['instance']}"
    )


def timestamp_record(ns: int) -> Record:
    """A ``timestamp`` record from nanoseconds since the epoch."""
    return record(seconds=ns // 1_000_000_000, nanoseconds=ns % 1_000_000_000)


def message_record(env: Envelope) -> Record:
    """The ``component-message`` a guest receives for an envelope.

    For a guest that is not wrapped; a wrapped one gets the envelope through the fast path
    (:mod:`wactor.wasm._fastcall`), and its adapter builds this same record inside wasm.
    """
    meta = record(
        correlation_id=env.correlation_id,
        reply_to=component_id_record(env.reply_to) if env.reply_to is not None else None,
        timestamp=timestamp_record(env.timestamp_ns),
        content_type=env.content_type,
    )
    return record(sender=component_id_record(env.sender), payload=env.payload, metadata=meta)


def config_record(
    env: list[tuple[str, str]],
    data: bytes | None,
    memory_bytes: int,
    timeout_ms: int,
    fuel: int | None,
) -> Record:
    """The ``component-config`` passed to ``initialize``."""
    limits = record(max_memory_bytes=memory_bytes, max_execution_time_ms=timeout_ms, max_fuel=fuel)
    return record(env_vars=env, config_data=data, resource_limits=limits)
