"""Faulty guest: fails the ways real Python guests fail, on request.

The payload is UTF-8 text, words separated by single spaces:

    import NAME      import module NAME now (ModuleNotFoundError when there is none)
    noise N TEXT...  write N bytes to stderr, then raise ValueError(TEXT)
    hog MIB          hold MIB more MiB, allocated 1 MiB at a time (MemoryError past the cap)
    echo TEXT...     reply TEXT

Every exception is left uncaught: componentize-py prints the traceback to stderr and traps.
"""

import importlib
import sys

from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import types

held: list[bytearray] = []


def run(command: str, args: list[str]) -> str:
    if command == "import":
        importlib.import_module(args[0])
        return "imported"
    if command == "noise":
        line = "noise " * 15 + "\n"
        left = int(args[0])
        while left > 0:
            chunk = line[:left]
            sys.stderr.write(chunk)
            left -= len(chunk)
        sys.stderr.flush()
        raise ValueError(" ".join(args[1:]))
    if command == "hog":
        for _ in range(int(args[0])):
            held.append(bytearray(1 << 20))
        return f"holding {len(held)} MiB"
    if command == "echo":
        return " ".join(args)
    raise ValueError(f"unknown command {command!r}")


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
            name="faulty",
            version="0.1.0",
            description="Test guest that fails on request.",
            author="wactor tests",
            license="Apache-2.0",
            supported_operations=["fail"],
            stateful=True,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
