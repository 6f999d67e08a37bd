"""Host functions of ``wactor:topics/pubsub@0.1.0``: topic publish/subscribe for guests.

An extension in a package of its own (``src/wactor/wit-ext/wactor-topics.wit``); guests that
do not import it never see it.
"""

from __future__ import annotations

import wasmtime
from wasmtime.component import Variant

from wactor.errors import WactorError
from wactor.wasm._calling import add_host_func
from wactor.wasm._context import current_context, current_subject

__all__ = ["INTERFACE", "define_topics"]

INTERFACE = "wactor:topics/pubsub@0.1.0"


def _fail(exc: Exception) -> Variant:
    """The guest's ``err``: the error's message on one line (a host bug: only its type)."""
    if isinstance(exc, WactorError | ValueError):
        return Variant("err", " ".join(str(exc).splitlines()))
    return Variant("err", f"internal error: {type(exc).__name__}")


def _publish(subject: str, payload: bytes, content_type: str | None) -> Variant:
    try:
        return Variant("ok", current_context().publish(subject, payload, content_type))
    except Exception as exc:  # noqa: BLE001 - every failure becomes the guest's err
        return _fail(exc)


def _subscribe(pattern: str) -> Variant:
    try:
        current_context().subscribe(pattern)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    return Variant("ok", None)


def _unsubscribe(pattern: str) -> Variant:
    try:
        current_context().unsubscribe(pattern)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    return Variant("ok", None)


def define_topics(root: wasmtime.component.LinkerInstance) -> None:
    """Define every function of the topics interface in ``root``."""
    with root.add_instance(INTERFACE) as inst:
        add_host_func(inst, "publish", _publish)
        add_host_func(inst, "subscribe", _subscribe)
        add_host_func(inst, "unsubscribe", _unsubscribe)
        add_host_func(inst, "current-subject", current_subject)
