"""Linker guest: rearranges the directories it was given, on request, the way a hostile guest
would try to widen its own (or another guest's) view at the next start.

The payload is UTF-8 text, words separated by single spaces; the reply is UTF-8 text:

    symlink TARGET PATH   make PATH a symbolic link to TARGET (``ok``)
    rmdir PATH            remove the empty directory PATH (``ok``)
    rename OLD NEW        rename OLD to NEW (``ok``)
    ls PATH               ``entries A,B,...`` (sorted)
    crash                 raise: componentize-py turns it into a trap (the host restarts it)

A failing filesystem call replies ``err <ExceptionName> <message>``.
"""

import os

from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import types


def run(command: str, args: list[str]) -> str:
    if command == "symlink":
        os.symlink(args[0], args[1])
        return "ok"
    if command == "rmdir":
        os.rmdir(args[0])
        return "ok"
    if command == "rename":
        os.rename(args[0], args[1])
        return "ok"
    if command == "ls":
        return "entries " + ",".join(sorted(os.listdir(args[0])))
    if command == "crash":
        raise RuntimeError("crash on request")
    return f"err usage unknown command {command!r}"


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        return None

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        command, _, rest = msg.payload.decode("utf-8").partition(" ")
        try:
            return run(command, rest.split(" ") if rest else []).encode("utf-8")
        except OSError as exc:
            return f"err {type(exc).__name__} {exc}".encode()

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        return None

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="linker",
            version="0.1.0",
            description="Test guest that rearranges its directories.",
            author="wactor tests",
            license="Apache-2.0",
            supported_operations=["symlink", "rmdir", "ls"],
            stateful=False,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
