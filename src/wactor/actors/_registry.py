"""A registry of running actors by id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wactor.actors._actor import ActorCell

__all__ = ["Registry"]


class Registry:
    """Actor cells by id, in registration order; one place to look targets up."""

    def __init__(self) -> None:
        self._cells: dict[str, ActorCell[Any]] = {}

    def register(self, cell: ActorCell[Any]) -> None:
        """Add a cell; its id must be free."""
        if cell.id in self._cells:
            raise ValueError(f"actor {cell.id!r} is already registered")
        self._cells[cell.id] = cell

    def unregister(self, actor_id: str) -> None:
        """Remove a cell if present."""
        self._cells.pop(actor_id, None)

    def lookup(self, actor_id: str) -> ActorCell[Any] | None:
        """The cell with this id, or ``None``."""
        return self._cells.get(actor_id)

    def __contains__(self, actor_id: object) -> bool:
        return actor_id in self._cells

    def __iter__(self) -> Iterator[ActorCell[Any]]:
        return iter(list(self._cells.values()))

    def __len__(self) -> int:
        return len(self._cells)
