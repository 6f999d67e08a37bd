"""demo/counter/0: counts messages twice, in memory and in storage.

The in-memory count starts at 0 with every new instance (a restart forgets it); the stored count
(key "count", decimal text) survives restarts. Each message increments both and the reply is
``memory=<m> stored=<s>``.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import errors, host_services, storage, types

COUNT_KEY = "count"

memory_count = 0  # module state: lives as long as this instance


def _decode(value: bytes) -> int:
    """Read the stored count: decimal text, or an 8-byte big-endian integer."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    if len(value) == 8:
        return int.from_bytes(value, "big")
    return 0


def _case(value: object) -> str:
    """The WIT case of a host error: ``errors.StorageError_QuotaExceeded()`` -> quota-exceeded."""
    name = type(value).__name__.split("_", 1)[-1]
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _storage_failure(err: Err) -> Err:
    return Err(errors.WasmError_RuntimeError(f"storage: {_case(err.value)}"))


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        return None

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        global memory_count  # noqa: PLW0603 - per-instance state is the point of the example
        memory_count += 1
        try:
            stored = storage.get(COUNT_KEY)
            stored_count = (_decode(stored) if stored is not None else 0) + 1
            storage.set(COUNT_KEY, str(stored_count).encode())
        except Err as err:
            host_services.log(types.LogLevel.ERROR, f"storage failed: {_case(err.value)}", None)
            raise _storage_failure(err) from None
        return f"memory={memory_count} stored={stored_count}".encode()

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="counter",
            version="0.1.0",
            description="Counts messages in memory and in storage.",
            author="wactor examples",
            license="Apache-2.0",
            supported_operations=["increment"],
            stateful=True,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
