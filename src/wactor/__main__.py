"""``python -m wactor`` runs the command line."""

from wactor.cli import main

main()
