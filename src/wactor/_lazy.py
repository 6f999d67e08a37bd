"""Package attributes imported on first use, so that importing a package stays light."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, origins: Mapping[str, Iterable[str]]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` for ``package`` that imports each name listed under a
    module of ``origins`` from that module on first use (then keeps it in the package's
    namespace)."""
    namespace = sys.modules[package].__dict__
    where = {name: module for module, names in origins.items() for name in names}

    def __getattr__(name: str) -> Any:
        origin = where.get(name)
        if origin is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(origin), name)
        namespace[name] = value
        return value

    return __getattr__
