"""Every package's ``__all__`` names what it really exports, and nothing private leaks."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "wactor",
    "wactor.actors",
    "wactor.cli",
    "wactor.host",
    "wactor.lattice",
    "wactor.messaging",
    "wactor.security",
    "wactor.storage",
    "wactor.tooling",
    "wactor.wasm",
    "wactor.errors",
    "wactor.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
        assert not item.startswith("_")
    public = {n for n in vars(module) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(module, n)).__name__ == "module"}
    stray = public - set(exported) - modules - {"annotations", "TYPE_CHECKING", "ClassVar"}
    assert not stray, f"{name} has public names outside __all__: {sorted(stray)}"
