"""The ``wactor`` command line."""

from wactor.cli import _call, _deadletters, _lifecycle, _ps, _run, _security, _tools  # noqa: F401 - importing a verb module registers it
from wactor.cli._main import cli, main

__all__ = ["cli", "main"]
