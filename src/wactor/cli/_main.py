"""The ``wactor`` command group and its error handling: one line per error, exit codes by family.

Exit codes: 0 ok, 2 usage/config/manifest error, 3 denied by security, 4 component fault or
timeout, 5 target not found.

Each verb's module is imported when the verb is used (``wactor --help`` imports them all), and a
verb module imports at its top only what every use of the verb needs: a verb that talks to a
running host loads neither the host, wasmtime nor a NATS client.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Final

import click

from wactor._text import escape_controls
from wactor.errors import WactorError

__all__ = ["main", "one_line"]

# verb -> "module:attribute" of its click command
_VERBS: Final[Mapping[str, str]] = {
    "approvals": "wactor.cli._security:approvals",
    "audit": "wactor.cli._security:audit",
    "build": "wactor.cli._tools:build",
    "call": "wactor.cli._call:call",
    "dead-letters": "wactor.cli._deadletters:dead_letters",
    "inspect": "wactor.cli._tools:inspect",
    "keygen": "wactor.cli._keys:keygen",
    "new": "wactor.cli._tools:new",
    "ps": "wactor.cli._ps:ps",
    "reload": "wactor.cli._lifecycle:reload",
    "restart": "wactor.cli._lifecycle:restart",
    "run": "wactor.cli._run:run",
    "sign": "wactor.cli._keys:sign",
    "start": "wactor.cli._lifecycle:start",
    "stop": "wactor.cli._lifecycle:stop",
}


class _Group(click.Group):
    """A group that imports a verb's module when the verb is used, and turns wactor errors into
    one line and an exit code."""

    def __init__(self, *args: Any, verbs: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._verbs = verbs

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._verbs})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        origin = self._verbs.get(cmd_name)
        if command is None and origin is not None:
            module, _, attribute = origin.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{origin} is not a click command")
            self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and self.get_command(ctx, args[0]) is None:
            # a mistyped verb: click suggests among the commands it holds, so it gets them all
            for name in self._verbs:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

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
        except BrokenPipeError:
            # The reader went away (`wactor audit … | head`): stop quietly, as a command killed
            # by SIGPIPE would, and keep the interpreter's final flush from failing too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
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


@click.group(cls=_Group, verbs=_VERBS)
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
