"""The verbs that reach a running host load what they print, not a host: no engine, no NATS
client, no storage, no metrics, no event loop; and ``wactor --help`` lists every verb without
loading them either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.test_control_cli import running
from conftest import wat_binary, write_host_config, write_manifest
from wactor.cli import cli

# What a host loads and a client of one does not need.
HOST_SIDE = (
    "wasmtime",
    "nats",
    "prometheus_client",
    "cryptography",
    "asyncio",
    "wactor.host._host",
    "wactor.host._control",
    "wactor.wasm",
    "wactor.storage",
    "wactor.lattice",
    "wactor.actors",
)

VERBS = {
    "approvals",
    "audit",
    "build",
    "call",
    "dead-letters",
    "inspect",
    "keygen",
    "new",
    "ps",
    "reload",
    "restart",
    "run",
    "sign",
    "start",
    "stop",
}

# Runs the CLI, then writes the modules it loaded to the file named by its first argument.
_PROBE = """
import json, sys
from pathlib import Path
report = Path(sys.argv[1])
sys.argv = ["wactor", *sys.argv[2:]]
from wactor.cli import main
try:
    main()
finally:
    report.write_text(json.dumps(sorted(sys.modules)))
"""


def _probe(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``wactor ARGS``; its result and the entries of ``HOST_SIDE`` it loaded."""
    report = tmp_path / "modules.json"
    report.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    loaded = json.loads(report.read_text())
    host_side = {h for h in HOST_SIDE for m in loaded if m == h or m.startswith(h + ".")}
    return result, sorted(host_side)


@pytest.fixture
def echo_config(tmp_path: Path) -> Path:
    echo = write_manifest(tmp_path / "components", "test/echo/0", wat_binary("echo"))
    return write_host_config(tmp_path, [echo])


def test_verbs_that_reach_a_running_host_load_nothing_of_a_host(
    tmp_path: Path, echo_config: Path
) -> None:
    manifest = str(tmp_path / "components" / "test_echo_0" / "component.toml")
    verbs = [
        "call test/echo/0 hi",
        "call test/echo/0 hi --json",
        "ps",
        "ps --json",
        "dead-letters",
        "audit",
        "approvals list",
        "restart test/echo/0",
        "reload test/echo/0",
        "stop test/echo/0",
        "start MANIFEST",
    ]
    outcomes = {}
    with running(echo_config):
        for verb in verbs:
            args = [manifest if word == "MANIFEST" else word for word in verb.split()]
            result, host_side = _probe(tmp_path, *args, "--config", str(echo_config))
            outcomes[verb] = (result.returncode, result.stderr, host_side)
    assert outcomes == {verb: (0, "", []) for verb in verbs}


def test_call_without_a_running_host_still_runs_one_of_its_own(echo_config: Path) -> None:
    result, host_side = _probe(
        echo_config.parent, "call", "test/echo/0", "hi", "--config", str(echo_config)
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", "")
    assert "wasmtime" in host_side  # the probe sees what a verb loads
    assert "wactor.host._host" in host_side


def test_help_lists_every_verb_and_loads_nothing_of_a_host(tmp_path: Path) -> None:
    result, host_side = _probe(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert {line.split()[0] for line in listed if line.strip()} == VERBS
    assert [m for m in host_side if m != "asyncio"] == []  # `run` has a loop


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_each_verb_shows_its_help(verb: str) -> None:
    result = CliRunner().invoke(cli, [verb, "--help"], prog_name="wactor")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: wactor {verb} ")
