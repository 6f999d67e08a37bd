"""Where a host keeps things on disk: its state directory and the compile cache."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from wactor.errors import HostConfigError
from wactor.host._config import HostConfig

__all__ = ["default_cache_dir", "make_state_dir"]


def default_cache_dir() -> Path:
    """Where compiled components are cached: ``$WACTOR_CACHE_DIR`` or the user's cache dir."""
    env = os.environ.get("WACTOR_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("wactor")) / "compiled"


def make_state_dir(config: HostConfig) -> None:
    """Create the state directory, or say in the config's words why it cannot be."""
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HostConfigError(
            f"cannot create directory {config.state_dir}: {exc.strerror or exc}",
            file=str(config.path) if config.path else None,
            key="state-dir",
            expected="a directory the host can create and write",
        ) from exc
