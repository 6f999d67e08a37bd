"""A component of the config that could not be started, and why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wactor._ids import ComponentId
from wactor._toml import read_toml
from wactor.errors import ConfigError, ManifestError, WactorError

__all__ = ["LoadFailure"]


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A component of the config that could not be started, and why."""

    manifest: Path
    error: WactorError
    component: ComponentId | None = None

    @classmethod
    def of(cls, path: Path, error: WactorError) -> LoadFailure:
        """The failure of the manifest at ``path``, attributed to the id it declares if that
        can be read at all."""
        return cls(path, error, _declared_id(path))


def _declared_id(path: Path) -> ComponentId | None:
    """Best effort: the id a (possibly invalid) manifest declares, to attribute its failure."""
    try:
        declared = read_toml(path, ManifestError)["component"]["id"]
        return ComponentId.parse(declared) if isinstance(declared, str) else None
    except (ConfigError, ValueError, KeyError, TypeError):
        return None
