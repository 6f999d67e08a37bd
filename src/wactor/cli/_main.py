"""The ``wactor`` command group and its error handling: one line per error, exit codes by family.

Exit codes: 0 ok, 2 usage/config/manifest error, 3 denied by security, 4 component fault or
timeout, 5 target not found.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from wactor._text import escape_controls
from wactor.errors import WactorError

__all__ = ["main", "one_line"]


class _Group(click.Group):
    """A group that turns wactor errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WactorError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {one_line(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors and --help: click prints and exits itself
        except Exception as exc:
            # A bug, not a user error: still one line, the traceback only with --debug.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            text = one_line(f"{type(exc).__name__}: {exc}")
            click.echo(f"error: unexpected {text} (--debug shows the traceback)", err=True)
            sys.exit(1)


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters (a newline in a quoted key, a terminal
    escape in a guest's version string) are shown escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class _OneLineFormatter(logging.Formatter):
    """Each record on one line, its control characters escaped: log messages carry text that
    guests and NATS peers chose (a traceback under --debug still follows on lines of its own)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="wactor")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Host sandboxed WebAssembly components as supervised actors."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


def main() -> None:
    """Entry point of the ``wactor`` script."""
    cli(prog_name="wactor")
