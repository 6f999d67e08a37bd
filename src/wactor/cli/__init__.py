"""The ``wactor`` command line."""

from wactor.cli._main import main

__all__ = ["main"]
