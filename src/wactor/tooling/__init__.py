"""Tooling for guest authors: build Python guests, scaffold new projects."""

from wactor.tooling._build import WORLD, build_guest, build_guest_cached, componentize_py_version
from wactor.tooling._scaffold import new_project
from wactor.tooling._worlds import EXTENSIONS

__all__ = [
    "EXTENSIONS",
    "WORLD",
    "build_guest",
    "build_guest_cached",
    "componentize_py_version",
    "new_project",
]
