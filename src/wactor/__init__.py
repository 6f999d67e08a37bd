"""wactor: host sandboxed WebAssembly components as supervised actors.

``Host`` and ``HostConfig`` are imported on first use, so that importing the actor core (or this
package) loads neither wasmtime nor a NATS client.
"""

from __future__ import annotations

import typing

from wactor import errors
from wactor._ids import ComponentId
from wactor._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from wactor.host import Host, HostConfig

__all__ = ["ComponentId", "Host", "HostConfig", "errors"]

__getattr__ = _lazy_exports(__name__, {"wactor.host": ("Host", "HostConfig")})
