"""Host function of ``wactor:http/client@0.1.0``: one outbound HTTP exchange per ``fetch``.

An extension in a package of its own (``src/wactor/wit-ext/wactor-http.wit``, the contract as it
is); guests that do not import it never see it. The exchange itself, and every check, is the
host's (:mod:`wactor.host._http`); this module turns the guest's ``request`` record into
arguments and the outcome into ``result<response, http-error>``. Every failure, a host bug too,
becomes an ``http-error`` here; only an exchange cut short by the end of the calling
component's own call deadline ends that call (as its timeout), as ``sleep-millis`` does.
"""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime.component import Variant

from wactor.errors import (
    CapabilityDeniedError,
    HttpError,
    HttpRequestError,
    HttpTimeoutError,
    ResponseTooLargeError,
    WactorError,
)
from wactor.wasm._calling import add_host_func
from wactor.wasm._context import DeadlineExceeded, current_context
from wactor.wasm._records import err, ok, record

__all__ = ["INTERFACE", "define_http"]

INTERFACE = "wactor:http/client@0.1.0"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _error(exc: Exception) -> Variant:
    """The guest's ``http-error`` for ``exc``."""
    if isinstance(exc, CapabilityDeniedError):  # a rate refusal too: it is the policy's word
        return err("denied", _one_line(exc))
    if isinstance(exc, HttpRequestError):
        return err("invalid-request", _one_line(exc))
    if isinstance(exc, HttpTimeoutError):
        return err("timeout")
    if isinstance(exc, ResponseTooLargeError):
        return err("too-large", exc.limit)
    if isinstance(exc, HttpError | WactorError):
        return err("failed", _one_line(exc))
    return err("failed", f"internal error: {type(exc).__name__}")


def _fetch(request: Any) -> Variant:
    try:
        status, headers, body = current_context().fetch(
            request.method,
            request.url,
            request.headers,
            request.body,
            getattr(request, "timeout-ms"),
        )
        return ok(record(status=status, headers=headers, body=body))
    except HttpTimeoutError as exc:
        if exc.call_deadline:  # the call itself is out of time: it ends here, as its timeout
            raise DeadlineExceeded(str(exc)) from None
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the guest's http-error
        return _error(exc)


def define_http(root: wasmtime.component.LinkerInstance) -> None:
    """Define the client interface's ``fetch`` in ``root``."""
    with root.add_instance(INTERFACE) as inst:
        add_host_func(inst, "fetch", _fetch)
