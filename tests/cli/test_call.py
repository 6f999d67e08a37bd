"""``wactor call`` end to end: a real subprocess, real components, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, guest_binary, wat_binary, write_host_config, write_manifest


def wactor(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "wactor", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A host config with a WAT echo, a looping component and the example counter."""
    components = tmp_path / "components"
    manifests = [
        write_manifest(components, "test/echo/0", wat_binary("echo")),
        write_manifest(components, "test/loop/0", wat_binary("loop"), timeout_ms=300),
        write_manifest(components, "test/trap/0", wat_binary("trap")),
    ]
    counter = components / "counter"
    counter.mkdir(parents=True)
    text = (ROOT / "examples" / "counter" / "component.toml").read_text()
    wasm = guest_binary("examples/counter")
    (counter / "component.toml").write_text(
        text.replace('wasm = "counter.wasm"', f'wasm = "{wasm}"')
    )
    manifests.append(counter / "component.toml")
    return write_host_config(tmp_path, manifests)


def test_call_echo_prints_each_reply_on_its_own_line(app: Path) -> None:
    result = wactor("call", "test/echo/0", "hello", "wörld", "--config", str(app))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\nwörld\n"


def test_counter_memory_restarts_with_the_host_but_storage_persists(app: Path) -> None:
    first = wactor("call", "demo/counter/0", "a", "b", "--config", str(app))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["memory=1 stored=1", "memory=2 stored=2"]
    second = wactor("call", "demo/counter/0", "c", "--config", str(app))
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["memory=1 stored=3"]


def test_timeout_exits_4_and_the_next_message_gets_a_fresh_instance(app: Path) -> None:
    result = wactor("call", "test/trap/0", "boom", "after", "--config", str(app))
    assert result.returncode == 4
    assert "trapped" in result.stderr
    assert result.stdout == "after\n"
    result = wactor("call", "test/loop/0", "spin", "--config", str(app))
    assert result.returncode == 4
    assert result.stderr == "error: test/loop/0: handle-message timed out after 300 ms\n"


def test_memory_limit_and_guest_errors_are_one_line_in_the_users_words(tmp_path: Path) -> None:
    components = tmp_path / "components"
    config = write_host_config(
        tmp_path,
        [
            write_manifest(components, "acc/hog/0", wat_binary("memhog"), memory="4MiB"),
            write_manifest(components, "acc/py/0", guest_binary("probe"), memory="32MiB"),
        ],
    )
    hog = wactor("call", "acc/hog/0", "eat", "--config", str(config))
    assert hog.returncode == 4
    assert hog.stderr == "error: acc/hog/0: memory limit of 4 MiB reached\n"
    py = wactor("call", "acc/py/0", "crash", "bign 100000000", "--config", str(config))
    assert py.returncode == 4
    assert py.stderr.splitlines() == [
        "error: acc/py/0: handle-message trapped: RuntimeError: probe crash requested",
        "error: acc/py/0: memory limit of 32 MiB reached",
    ]


def test_json_output_carries_replies_and_errors(app: Path) -> None:
    import json

    result = wactor("call", "test/trap/0", "ok", "boom", "--json", "--config", str(app))
    assert result.returncode == 4
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first == {"target": "test/trap/0", "payload": "ok", "ok": True, "reply": "ok"}
    assert second["ok"] is False
    assert second["error"]["type"] == "TrapError"
    assert second["error"]["exit_code"] == 4


def test_unknown_target_exits_5(app: Path) -> None:
    result = wactor("call", "test/ghost/0", "x", "--config", str(app))
    assert result.returncode == 5
    assert result.stderr.strip().endswith("target not found: test/ghost/0")


def test_bad_target_syntax_exits_2(app: Path) -> None:
    result = wactor("call", "not-an-id", "x", "--config", str(app))
    assert result.returncode == 2
    assert "namespace/name/instance" in result.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"garbage, not wasm", "bad magic bytes"),
        (bytes.fromhex("0061736d01000000"), "core wasm module"),
    ],
)
def test_bad_component_exits_2_and_others_keep_running(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    components = tmp_path / "components"
    bad_wasm = tmp_path / "bad.wasm"
    bad_wasm.write_bytes(content)
    config = write_host_config(
        tmp_path,
        [
            write_manifest(components, "test/bad/0", bad_wasm),
            write_manifest(components, "test/echo/0", wat_binary("echo")),
        ],
    )
    bad = wactor("call", "test/bad/0", "x", "--config", str(config))
    assert bad.returncode == 2
    assert fragment in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    good = wactor("call", "test/echo/0", "x", "--config", str(config))
    assert good.returncode == 0
    assert good.stdout == "x\n"
    assert fragment in good.stderr  # reported as a warning, not fatal


def test_invalid_manifest_and_missing_config_exit_2(tmp_path: Path) -> None:
    components = tmp_path / "components"
    manifest = write_manifest(components, "test/echo/0", wat_binary("echo"))
    manifest.write_text(manifest.read_text() + "\n[resources.extra]\nbogus = 1\n")
    config = write_host_config(tmp_path, [manifest])
    result = wactor("call", "test/echo/0", "x", "--config", str(config))
    assert result.returncode == 2
    assert "component.toml" in result.stderr
    missing = wactor("call", "test/echo/0", "x", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "nope.toml" in missing.stderr


def test_inspect_reports_fit_and_misfit() -> None:
    good = wactor("inspect", str(wat_binary("echo")))
    assert good.returncode == 0, good.stderr
    assert "airssys:core/component-lifecycle@1.0.0" in good.stdout
    assert "fits airssys:core/runtime-host@1.0.0: yes" in good.stdout
    bad = wactor("inspect", str(wat_binary("missing_export")))
    assert bad.returncode == 2
    assert "lacks handle-message" in bad.stdout
