"""demo/greeter/0: asks demo/echo/0 to echo a greeting and remembers the reply.

* any message P: requests ``b"hello " + P`` from demo/echo/0 and replies straight away with
  ``b"sent <correlation-id>"``; the echo's answer arrives later through handle-callback.
* the message ``b"last"``: replies with the last answer received (or ``b"none"``).
* handle-callback: stores the answer under "last-reply" and its correlation id under
  "last-correlation", and logs it.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import errors, host_messaging, host_services, storage, types

ECHO = types.ComponentId(namespace="demo", name="echo", instance="0")
TIMEOUT_MS = 2000
ERROR_CONTENT_TYPE = "application/x-wactor-error"


def _case(value: object) -> str:
    """The WIT case of a host error: ``errors.StorageError_QuotaExceeded()`` -> quota-exceeded."""
    name = type(value).__name__.split("_", 1)[-1]
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _fail(what: str, err: Err) -> Err:
    host_services.log(types.LogLevel.ERROR, f"{what} failed: {_case(err.value)}", None)
    return Err(errors.WasmError_RuntimeError(f"{what}: {_case(err.value)}"))


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        return None

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        if msg.payload == b"last":
            try:
                last = storage.get("last-reply")
            except Err as err:
                raise _fail("storage get", err) from None
            return last if last is not None else b"none"
        try:
            correlation_id = host_messaging.request(ECHO, b"hello " + msg.payload, TIMEOUT_MS)
        except Err as err:
            raise _fail("request to demo/echo/0", err) from None
        return b"sent " + correlation_id.encode()

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        correlation_id = msg.metadata.correlation_id or ""
        failed = msg.metadata.content_type == ERROR_CONTENT_TYPE
        try:
            storage.set("last-reply", msg.payload)
            storage.set("last-correlation", correlation_id.encode())
        except Err as err:
            raise _fail("storage set", err) from None
        text = msg.payload.decode("utf-8", "replace")
        level = types.LogLevel.WARN if failed else types.LogLevel.INFO
        kind = "error" if failed else "reply"
        host_services.log(
            level, f"{kind} for {correlation_id}: {text}", [("correlation-id", correlation_id)]
        )

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="greeter",
            version="0.1.0",
            description="Greets through demo/echo/0 and remembers the last reply.",
            author="wactor examples",
            license="Apache-2.0",
            supported_operations=["greet", "last"],
            stateful=True,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
