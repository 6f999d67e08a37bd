"""The lattice: one NATS connection per host, shared by its broker, storage and registry.

Everything here loads a NATS client, so it is imported on first use.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from wactor.lattice._connection import LatticeConnection
    from wactor.lattice._registry import HostEntry, LatticeRegistry, read_lattice

__all__ = ["HostEntry", "LatticeConnection", "LatticeRegistry", "read_lattice"]

_MODULES = {
    "HostEntry": "wactor.lattice._registry",
    "LatticeConnection": "wactor.lattice._connection",
    "LatticeRegistry": "wactor.lattice._registry",
    "read_lattice": "wactor.lattice._registry",
}


def __getattr__(name: str) -> typing.Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'wactor.lattice' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
