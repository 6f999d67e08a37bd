"""demo/echo/0: replies to every message with its payload, unchanged."""

from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import host_services, types


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        host_services.log(types.LogLevel.DEBUG, "echo ready", None)

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        return msg.payload

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        # echo makes no requests, so no callbacks arrive.
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="echo",
            version="0.1.0",
            description="Replies with the payload it received.",
            author="wactor examples",
            license="Apache-2.0",
            supported_operations=["echo"],
            stateful=False,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
