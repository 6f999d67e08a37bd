"""The CLI's last line of defence: an exception that is no WactorError is still one line."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import wat_binary

# A verb that fails the way a bug would, added to the real command group.
_BOOM = """
import sys
import click
from wactor.cli import main
from wactor.cli._main import cli

@cli.command()
def boom() -> None:
    raise RuntimeError("something\\nunexpected")

sys.argv = ["wactor", *sys.argv[1:]]
main()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BOOM, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unexpected_exception_is_one_line_and_its_traceback_only_with_debug() -> None:
    result = _run("boom")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line == (
        "error: unexpected RuntimeError: something\\nunexpected (--debug shows the traceback)"
    )
    debug = _run("--debug", "boom")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    # click's own usage errors keep their exit code 2 and their wording
    usage = _run("no-such-verb")
    assert usage.returncode == 2
    assert "No such command 'no-such-verb'" in usage.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`wactor inspect X | head -0`: the pipe is closed before anything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "wactor", "inspect", str(wat_binary("echo"))],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    # nothing but inspect's progress line: no error, no traceback
    assert all(line.startswith("compiling ") for line in result.stderr.splitlines())
    assert result.returncode == 141
