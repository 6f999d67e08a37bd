"""Flood guest: does many things in one call, to test the host's limits on a guest's volume.

The payload is UTF-8 text, words separated by single spaces; the reply is UTF-8 text.

    flood ID N        send N messages to ID in one call; reply "ok=A limited=B other=C"
                      (B: refusals that name the rate limit; C: any other refusal)
    logs N TEXT...    log TEXT N times in one call; reply "logged N"
    print TEXT...     write TEXT to stdout (one print, flushed); reply "printed"
    echo TEXT...      reply TEXT
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import host_messaging, host_services, types


def _parse_id(text: str) -> types.ComponentId:
    namespace, name, instance = text.split("/")
    return types.ComponentId(namespace=namespace, name=name, instance=instance)


def _flood(target: types.ComponentId, count: int) -> str:
    sent = limited = other = 0
    for _ in range(count):
        try:
            host_messaging.send(target, b"x")
            sent += 1
        except Err as err:
            detail = getattr(err.value, "value", "")
            if isinstance(detail, str) and "rate limit" in detail:
                limited += 1
            else:
                other += 1
    return f"ok={sent} limited={limited} other={other}"


def run(command: str, args: list[str]) -> str:
    if command == "flood":
        return _flood(_parse_id(args[0]), int(args[1]))
    if command == "logs":
        text = " ".join(args[1:])
        for _ in range(int(args[0])):
            host_services.log(types.LogLevel.INFO, text, [])
        return f"logged {args[0]}"
    if command == "print":
        print(" ".join(args), flush=True)
        return "printed"
    if command == "echo":
        return " ".join(args)
    return f"unknown command {command!r}"


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        return None

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        command, _, rest = msg.payload.decode("utf-8").partition(" ")
        return run(command, rest.split(" ") if rest else []).encode("utf-8")

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="flood",
            version="0.1.0",
            description="Test guest that floods the host.",
            author="wactor tests",
            license="Apache-2.0",
            supported_operations=["flood"],
            stateful=False,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
