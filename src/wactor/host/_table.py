"""The components running on this host: their runtimes, by id, in start order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from wactor._ids import ComponentId
from wactor.actors import Registry
from wactor.host._runtime import ComponentRuntime

__all__ = ["ComponentTable"]


class _Lattice(Protocol):
    def components(self) -> list[ComponentId]: ...


class ComponentTable:
    """The runtime of each component started here; also what a guest learns about its peers."""

    def __init__(self, registry: Registry, lattice: _Lattice | None) -> None:
        self._registry = registry
        self._lattice = lattice
        self._runtimes: dict[ComponentId, ComponentRuntime] = {}

    def __contains__(self, cid: object) -> bool:
        return cid in self._runtimes

    def __iter__(self) -> Iterator[ComponentId]:
        return iter(list(self._runtimes))

    def add(self, runtime: ComponentRuntime) -> None:
        """Hold the runtime of a component being started."""
        self._runtimes[runtime.component_id] = runtime

    def pop(self, cid: ComponentId) -> ComponentRuntime | None:
        """Let go of a component's runtime; return it if there was one."""
        return self._runtimes.pop(cid, None)

    def runtime(self, cid: ComponentId) -> ComponentRuntime | None:
        """The runtime of a component running here, if any."""
        return self._runtimes.get(cid)

    def local_ids(self) -> list[ComponentId]:
        """The components registered here, in start order."""
        return [ComponentId.parse(c.id) for c in self._registry]

    def reachable_ids(self) -> list[ComponentId]:
        """Every component this host can reach: its own, and the lattice's when it has one."""
        local = self.local_ids()
        if self._lattice is None:
            return local
        return list(dict.fromkeys([*local, *self._lattice.components()]))
