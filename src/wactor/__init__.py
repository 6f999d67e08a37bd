"""wactor: host sandboxed WebAssembly components as supervised actors.

``Host`` and ``HostConfig`` are imported on first use, so that importing the actor core (or this
package) loads neither wasmtime nor a NATS client.
"""

from __future__ import annotations

import importlib
import typing

from wactor import errors
from wactor._ids import ComponentId

if typing.TYPE_CHECKING:
    from wactor.host import Host, HostConfig

__all__ = ["ComponentId", "Host", "HostConfig", "errors"]

_LAZY = {"Host": "wactor.host", "HostConfig": "wactor.host"}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wactor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
