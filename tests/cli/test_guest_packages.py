"""Guests with third-party packages: `wactor build` installs a guest's pure-Python requirements
for the guest's Python, adds `--path` directories, names packages no guest can run, and keeps
the packages of the Python running the build out of the guest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import ROOT, TRUSTED, write_host_config
from wactor.errors import BuildError
from wactor.host import Host, HostConfig
from wactor.tooling._build import cache_key
from wactor.tooling._deps import find_requirements, install_requirements

GUEST = ROOT / "tests" / "guests" / "markdown"
# A first build (pip, componentize-py) and compile takes minutes on a loaded machine; later runs
# hit the build and compile caches.
COLD_BUILD_S = 600


def wactor_build(*args: str) -> subprocess.CompletedProcess[str]:
    """`wactor build` as from a shell with wactor's virtual environment activated."""
    venv = Path(sys.executable).parent.parent
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [sys.executable, "-m", "wactor", "build", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


@pytest.mark.timeout(COLD_BUILD_S)
async def test_a_guest_importing_a_pypi_package_built_by_wactor_build_answers(
    tmp_path: Path,
) -> None:
    wasm = tmp_path / "markdown.wasm"
    built = wactor_build(str(GUEST / "app.py"), "-o", str(wasm), "--path", str(GUEST / "vendor"))
    assert built.returncode == 0, built.stderr
    assert "wrote" in built.stderr
    manifest = tmp_path / "component.toml"
    manifest.write_text(
        f'[component]\nid = "t/md/0"\nwasm = "{wasm}"\nversion = "1.0.0"\n\n'
        '[resources]\nmemory = "128MiB"\ntimeout-ms = 10000\n'
    )
    config = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
    async with Host.open(config) as host:
        await host.start(manifest)

        async def ask(command: str) -> str:
            reply = await host.request("t/md/0", command.encode(), timeout=60)
            assert reply is not None
            return reply.decode()

        assert await ask("render # Title\n\nSome *emphasis* and `code`.") == (
            "<h1>Title</h1>\n<p>Some <em>emphasis</em> and <code>code</code>.</p>"
        )
        assert await ask("version") == "3.11.3"  # the pinned requirement
        assert await ask("section *x*") == "<section><p><em>x</em></p></section>"  # --path
        # The build's own Python (an activated venv, a python3 on PATH) lent it nothing.
        assert await ask("at-build markdown") == "yes"
        assert await ask("at-build click") == "no ModuleNotFoundError"
        assert await ask("at-build wactor") == "no ModuleNotFoundError"
        assert await ask("import click") == "no ModuleNotFoundError"


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("orjson", "orjson is a native extension with no pure-Python or WASI build; "),
        (
            "pydantic==2.11.0",
            "pydantic-core (needed by pydantic) is a native extension with no pure-Python",
        ),
        ("wactor-no-such-package-4d1c", "no such package on the index: wactor-no-such-package"),
        ("markdown==99.0", "no version of markdown==99.0 a guest can use (newest: "),
    ],
)
def test_a_package_no_guest_can_run_is_named_on_one_line(
    tmp_path: Path, requirement: str, expected: str
) -> None:
    (tmp_path / "app.py").write_text("import sys\n")
    (tmp_path / "requirements.txt").write_text(f"{requirement}\n")
    result = wactor_build(str(tmp_path / "app.py"), "-o", str(tmp_path / "x.wasm"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: {tmp_path / 'requirements.txt'}: cannot install for the guest: "
    )
    assert expected in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.wasm").exists()


def test_requirements_come_from_the_flag_then_requirements_txt_then_pyproject(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    assert find_requirements(app) is None
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "g"\ndependencies = ["markdown>=3", "idna"]\n'
    )
    found = find_requirements(app)
    assert found is not None
    assert (found.text, found.source.name) == ("markdown>=3\nidna", "pyproject.toml")
    (tmp_path / "requirements.txt").write_text("# a comment\n\nmarkdown==3.11.3  # pinned\n")
    found = find_requirements(app)
    assert found is not None
    assert (found.text, found.source.name) == ("markdown==3.11.3", "requirements.txt")
    other = tmp_path / "guest-reqs.txt"
    other.write_text("idna\n")
    found = find_requirements(app, other)
    assert found is not None
    assert found.text == "idna"
    (tmp_path / "requirements.txt").write_text("# nothing yet\n")
    found = find_requirements(app)
    assert found is not None
    assert found.empty


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-r more.txt", "'-r' is not supported in a guest's requirements"),
        ("--requirement=more.txt", "'--requirement' is not supported"),
        ("-e ./lib", "'-e' is not supported"),
        ("./lib", "names local files; add the directory with --path DIR instead"),
        ("pkg @ file:///tmp/pkg", "names local files"),
    ],
)
def test_requirements_that_the_cache_key_could_not_cover_are_refused(
    tmp_path: Path, line: str, expected: str
) -> None:
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    (tmp_path / "requirements.txt").write_text(f"{line}\n")
    with pytest.raises(BuildError) as info:
        find_requirements(app)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_requirement_sources_are_one_line_errors(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    with pytest.raises(BuildError, match="no such requirements file"):
        find_requirements(app, tmp_path / "missing.txt")
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(BuildError, match="not valid TOML"):
        find_requirements(app)
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = "markdown"\n')
    with pytest.raises(BuildError, match=r"\[project\]\.dependencies must be a list of strings"):
        find_requirements(app)
    with pytest.raises(BuildError, match="--path must name a directory"):
        cache_key(app, paths=[tmp_path / "nowhere"])


def test_the_cache_key_covers_requirements_paths_and_packages_beside_the_app(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text("import helper\n")
    vendor = tmp_path / "vendor"
    (vendor / "lib").mkdir(parents=True)
    (vendor / "lib" / "data.json").write_text("{}")
    plain = cache_key(app)
    (tmp_path / "requirements.txt").write_text("# only a comment\n")
    assert cache_key(app) == plain  # no requirement: the key of a guest without any
    (tmp_path / "requirements.txt").write_text("markdown==3.11.3\n")
    pinned = cache_key(app)
    assert pinned != plain
    (tmp_path / "requirements.txt").write_text("markdown==3.11.3  # same, commented\n")
    assert cache_key(app) == pinned
    with_path = cache_key(app, paths=[vendor])
    assert with_path != pinned
    (vendor / "lib" / "data.json").write_text('{"changed": true}')
    assert cache_key(app, paths=[vendor]) != with_path
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    nested = cache_key(app)
    assert nested != pinned
    (tmp_path / "pkg" / "mod.py").write_text("x = 2\n")
    changed = cache_key(app)
    assert changed != nested
    (tmp_path / "pkg" / "__pycache__").mkdir()  # caches and hidden directories do not count
    (tmp_path / "pkg" / "__pycache__" / "mod.py").write_text("ignored\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "site.py").write_text("ignored\n")
    assert cache_key(app) == changed


@pytest.mark.timeout(COLD_BUILD_S)
def test_a_scaffold_shows_how_and_its_example_requirement_builds_and_answers(
    tmp_path: Path,
) -> None:
    assert wactor("new", "notes", "--dir", str(tmp_path)).returncode == 0
    project = tmp_path / "notes"
    requirements = project / "requirements.txt"
    assert "# markdown==3.11.3\n" in requirements.read_text()
    assert "## Packages" in (project / "README.md").read_text()
    requirements.write_text(requirements.read_text().replace("# markdown==", "markdown=="))
    app = project / "app.py"
    source = app.read_text()
    echo = "        return msg.payload\n"
    assert source.count(echo) == 1
    app.write_text(
        "import markdown\n"
        + source.replace(
            echo, "        return markdown.markdown(bytes(msg.payload).decode()).encode()\n"
        )
    )
    built = wactor_build(str(app), "-o", str(project / "notes.wasm"))
    assert built.returncode == 0, built.stderr
    config = write_host_config(tmp_path, [project / "component.toml"])
    called = wactor("call", "local/notes/0", "*hello*", "--config", str(config))
    assert called.returncode == 0, called.stderr
    assert called.stdout == "<p><em>hello</em></p>\n"


def test_packages_are_installed_once_per_requirements_with_progress(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import markdown\n")
    (tmp_path / "requirements.txt").write_text("markdown==3.11.3\n")
    found = find_requirements(app)
    assert found is not None
    said: list[str] = []
    site = install_requirements(found, tmp_path / "deps", progress=said.append)
    assert said[0] == "installing dependencies from requirements.txt for Python 3.14…"
    assert "  pip: Successfully installed markdown-3.11.3" in said
    assert (site / "markdown" / "__init__.py").is_file()
    assert not list(site.rglob("*.pyc"))  # --no-compile: the guest's Python compiles its own
    said.clear()
    assert install_requirements(found, tmp_path / "deps", progress=said.append) == site
    assert said == ["using installed dependencies from requirements.txt"]


def test_a_python_without_pip_is_told_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")],
        check=True,
        timeout=120,
    )
    app = tmp_path / "app.py"
    app.write_text("import markdown\n")
    (tmp_path / "requirements.txt").write_text("markdown==3.11.3\n")
    found = find_requirements(app)
    assert found is not None
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bare" / "bin" / "python"))
    with pytest.raises(BuildError) as info:
        install_requirements(found, tmp_path / "deps")
    assert str(info.value).startswith("pip is missing from the Python running wactor (")
    assert str(info.value).endswith("install it with: python -m ensurepip")
    assert not (tmp_path / "deps").exists() or not any((tmp_path / "deps").iterdir())
