"""What the host shows about itself: component statuses and the supervision tree as data."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from wactor._ids import ComponentId
from wactor.actors import ActorStats, Registry, Supervisor
from wactor.host._placement import PlacementStats
from wactor.host._table import ComponentTable

__all__ = ["ComponentStatus", "component_statuses", "tree_snapshot"]


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """A component as the host sees it now."""

    id: ComponentId
    version: str
    health: str
    actor: ActorStats
    placement: PlacementStats  # where its export calls run (loop thread or workers)


def component_statuses(registry: Registry, table: ComponentTable) -> list[ComponentStatus]:
    """The running components, in start order."""
    out = []
    for cell in registry:
        cid = ComponentId.parse(cell.id)
        runtime = table.runtime(cid)
        assert runtime is not None  # registered only while its runtime is held
        version = runtime.metadata.version if runtime.metadata else runtime.manifest.version
        out.append(
            ComponentStatus(
                cid, version, runtime.health, cell.statistics(), runtime.placement.statistics()
            )
        )
    return out


def tree_snapshot(
    supervisor: Supervisor, table: ComponentTable, *, failure: str | None, dead_letters: int
) -> dict[str, Any]:
    """The supervision tree now, as plain data (what ``wactor ps`` shows)."""

    def node(sup: Supervisor) -> dict[str, Any]:
        children: list[dict[str, Any]] = []
        for child in sup.children():
            if isinstance(child, Supervisor):
                children.append(node(child))
                continue
            stats = child.statistics()
            runtime = table.runtime(ComponentId.parse(child.id))
            placed = runtime.placement.statistics() if runtime else None
            children.append(
                {
                    "kind": "component",
                    "id": child.id,
                    "state": stats.state,
                    "health": runtime.health if runtime else "unknown",
                    "depth": stats.depth,
                    "capacity": stats.capacity,
                    "processed": stats.processed,
                    "failed": stats.failed,
                    "restarts": stats.restarts,
                    "refused": stats.refused,
                    "last_failure": stats.last_failure,
                    "inline": placed.inline if placed else False,
                    "inline_calls": placed.inline_calls if placed else 0,
                    "overstays": placed.overstays if placed else 0,
                }
            )
        return {
            "kind": "supervisor",
            "id": sup.id,
            "strategy": sup.spec.strategy,
            "state": sup.state,
            "restarts": sup.restarts,
            "last_failure": sup.last_failure,
            "children": children,
        }

    return {
        "pid": os.getpid(),
        "time": time.time(),
        "failure": failure,
        "dead_letters": dead_letters,
        "tree": node(supervisor),
    }
