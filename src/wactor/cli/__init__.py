"""The ``wactor`` command line."""

from wactor.cli._main import cli, main

__all__ = ["cli", "main"]
