"""The guest author's path: `wactor new` → `wactor build` → `wactor inspect` → `wactor call`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import ROOT, write_host_config


@pytest.mark.timeout(600)  # build, inspect and call a new scaffold: minutes when the host is loaded
def test_scaffolded_guest_builds_and_answers(tmp_path: Path) -> None:
    created = wactor("new", "hello", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    project = tmp_path / "hello"
    assert (project / "app.py").is_file()
    assert (project / "component.toml").is_file()

    built = wactor("build", str(project / "app.py"), "-o", str(project / "hello.wasm"))
    assert built.returncode == 0, built.stderr
    assert "wrote" in built.stderr  # progress is shown
    assert (project / "hello.wasm").stat().st_size > 1_000_000

    inspected = wactor("inspect", str(project / "hello.wasm"))
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    assert "fits airssys:core/runtime-host@1.0.0: yes" in inspected.stdout

    config = write_host_config(tmp_path, [project / "component.toml"])
    called = wactor("call", "local/hello/0", "hi there", "--config", str(config))
    assert called.returncode == 0, called.stderr
    assert called.stdout == "hi there\n"


def test_new_refuses_a_bad_name_and_a_used_directory(tmp_path: Path) -> None:
    bad = wactor("new", "no/slashes", "--dir", str(tmp_path))
    assert bad.returncode == 2
    assert "\n" not in bad.stderr.strip()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    used = wactor("new", "taken", "--dir", str(tmp_path))
    assert used.returncode == 2


def test_build_error_is_one_line_naming_the_file(tmp_path: Path) -> None:
    app = tmp_path / "broken.py"
    app.write_text("this is not python(\n")
    result = wactor("build", str(app), "-o", str(tmp_path / "broken.wasm"), "--no-cache")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert "broken.py" in last
    assert "SyntaxError" in last
    assert "Traceback" not in result.stderr


def test_guest_toolchain_is_a_dependency_not_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "componentize-py==0.25.1" in project["dependencies"]
    # `pip install 'wactor[build]'` keeps working, and brings nothing more than plain wactor.
    assert project["optional-dependencies"].get("build", []) == []


def test_missing_toolchain_is_one_line_without_pointing_to_an_extra(tmp_path: Path) -> None:
    """Only an install made with --no-deps lacks componentize-py: the error says to reinstall."""
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    without_toolchain = (
        "import sys\n"
        "sys.modules['componentize_py'] = None\n"  # not importable
        "sys.executable = '/nonexistent/python'\n"  # no script next to the interpreter
        "from wactor.cli import main\n"
        f"sys.argv = ['wactor', 'build', {str(app)!r}, '-o', {str(tmp_path / 'app.wasm')!r}, "
        "'--no-cache']\n"
        "main()\n"
    )
    env = {**os.environ, "PATH": str(tmp_path / "empty")}  # and none on PATH
    result = subprocess.run(
        [sys.executable, "-c", without_toolchain],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: componentize-py")
    assert "reinstall wactor" in line
    assert "[build]" not in line


def test_scaffolded_readme_does_not_ask_for_an_extra(tmp_path: Path) -> None:
    assert wactor("new", "plain", "--dir", str(tmp_path)).returncode == 0
    assert "wactor[build]" not in (tmp_path / "plain" / "README.md").read_text()
