"""The lattice: one NATS connection per host, shared by its broker, storage and registry.

Everything here loads a NATS client, so it is imported on first use.
"""

from __future__ import annotations

import typing

from wactor._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from wactor.lattice._connection import LatticeConnection
    from wactor.lattice._registry import HostEntry, LatticeRegistry, read_lattice

__all__ = ["HostEntry", "LatticeConnection", "LatticeRegistry", "read_lattice"]

__getattr__ = _lazy_exports(
    __name__,
    {
        "wactor.lattice._connection": ("LatticeConnection",),
        "wactor.lattice._registry": ("HostEntry", "LatticeRegistry", "read_lattice"),
    },
)
