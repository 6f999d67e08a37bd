"""A guest's third-party Python packages: found beside ``APP.py``, installed for the guest.

The guest runs componentize-py's bundled CPython on WASI, so only pure-Python wheels
(``py3-none-any``) can run there. They are installed with pip for that interpreter, not the
host's::

    pip install --target DIR --only-binary=:all: --platform any --implementation py \\
        --python-version 3.14 --no-compile -r requirements.txt

into a directory named after the requirements text and the target, so the next build of any
guest with the same requirements reuses it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import mmap
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wactor.errors import BuildError

__all__ = ["Requirements", "find_requirements", "guest_python_version", "install_requirements"]

Progress = Callable[[str], None] | None

#: The guest interpreter's version when componentize-py does not tell (0.25.1 bundles 3.14).
_FALLBACK_PYTHON = "3.14"
#: pip resolving and downloading a large set is slow, not hung, up to this.
_PIP_TIMEOUT_S = 900.0

# Lines pip prints that are worth relaying as progress.
_PIP_PROGRESS = re.compile(r"^(Collecting|Downloading|Installing collected|Successfully installed)")
_NO_MATCH = re.compile(r"No matching distribution found for ([^\s;]+)(?: \(from ([^)]+)\))?")
_VERSIONS = re.compile(r"Could not find a version that satisfies .*\(from versions: ([^)]*)\)")
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_UNREACHABLE = re.compile(
    r"(NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Network is unreachable|Name or service not known|ConnectTimeout|ProxyError)"
)
# Options that pull in text the cache key would not cover.
_REFUSED_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a guest depends on: requirement lines (pip syntax) and where they came from."""

    text: str  # one requirement (or pip option) a line, comments and blank lines dropped
    source: Path

    @property
    def empty(self) -> bool:
        return not self.text


def _clean(lines: list[str], source: Path) -> str:
    kept: list[str] = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        option = line.split(None, 1)[0].split("=", 1)[0]
        if option in _REFUSED_OPTIONS:
            raise BuildError(
                f"{source}: {option!r} is not supported in a guest's requirements; "
                "list the packages themselves (local code goes in with --path DIR)"
            )
        if line.startswith((".", "/", "~", "file:")) or "@ file:" in line:
            raise BuildError(
                f"{source}: {line!r} names local files; add the directory with --path DIR instead"
            )
        kept.append(line)
    return "\n".join(kept)


def _from_pyproject(path: Path) -> Requirements:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BuildError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: not valid TOML: {exc}") from None
    project = data.get("project", {})
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    if not isinstance(deps, list) or not all(isinstance(item, str) for item in deps):
        raise BuildError(f"{path}: [project].dependencies must be a list of strings")
    return Requirements(_clean(deps, path), path)


def find_requirements(app: Path, requirements: Path | None = None) -> Requirements | None:
    """The guest's requirements: ``requirements`` if given, else ``requirements.txt`` beside
    ``app``, else the ``[project].dependencies`` of a ``pyproject.toml`` beside it, else none.
    """
    if requirements is not None:
        path = Path(requirements)
        if not path.is_file():
            raise BuildError(f"{path}: no such requirements file")
    else:
        path = app.parent / "requirements.txt"
        if not path.is_file():
            pyproject = app.parent / "pyproject.toml"
            return _from_pyproject(pyproject) if pyproject.is_file() else None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BuildError(f"{path}: not UTF-8 text") from None
    return Requirements(_clean(text.splitlines(), path), path)


@functools.cache
def _python_in(library: str) -> str | None:
    with (
        contextlib.suppress(OSError, ValueError),
        open(library, "rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
    ):
        found = {m[1].decode() for m in re.finditer(rb"libpython(3\.\d+)\.so", data)}
        if len(found) == 1:
            return found.pop()
    return None


def guest_python_version() -> str:
    """The guest interpreter's ``major.minor``, read from componentize-py's library (which
    embeds ``libpython3.X.so``); ``3.14`` if it cannot be told."""
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("componentize_py")
        if spec is not None and spec.origin:
            for library in sorted(Path(spec.origin).parent.glob("componentize_py*.so")):
                version = _python_in(str(library))
                if version is not None:
                    return version
    return _FALLBACK_PYTHON


def _pip_flags(python: str) -> list[str]:
    return [
        "--only-binary=:all:",
        "--platform",
        "any",
        "--implementation",
        "py",
        "--python-version",
        python,
    ]


def _pip(args: list[str], progress: Progress, *, stream: bool) -> tuple[int, str]:
    """Run ``python -m pip ARGS``; relay its progress lines; return its code and output."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.pop("PIP_TARGET", None)
    env.pop("PIP_PREFIX", None)
    command = [sys.executable, "-m", "pip", *args]
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except OSError as exc:
        raise BuildError(f"cannot run pip: {exc}") from None
    lines: list[str] = []
    assert proc.stdout is not None
    # pip may stall without a word (a stuck download): the watchdog ends it, closing its output.
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        proc.kill()

    watchdog = threading.Timer(_PIP_TIMEOUT_S, stop)
    watchdog.start()
    try:
        with proc:
            for raw in proc.stdout:
                line = raw.rstrip()
                lines.append(line)
                if stream and progress is not None and _PIP_PROGRESS.match(line):
                    progress(f"  pip: {line.split(' (from -r ', 1)[0]}")
            code = proc.wait()
    finally:
        watchdog.cancel()
    if fired.is_set():
        raise BuildError(f"pip did not finish within {_PIP_TIMEOUT_S:g}s")
    output = "\n".join(lines)
    if code != 0 and "No module named pip" in output:
        raise BuildError(
            f"pip is missing from the Python running wactor ({sys.executable}); "
            "install it with: python -m ensurepip"
        )
    return code, output


def _why_not(spec: str, parent: str | None, versions: list[str], progress: Progress) -> str:
    """Say why ``spec`` has no distribution a guest can use: no such version, native only,
    source only, or no such package.

    ``versions`` are those pip found usable by the guest. Only wheels and the index's listing
    are consulted, so no package's build code runs here.
    """
    name_match = _NAME.match(spec)
    name = name_match[0] if name_match else spec
    needed_by = f" (needed by {parent})" if parent else ""
    _say(progress, f"checking why {name} cannot be installed for the guest…")
    # The same requirement for this host's platform: a wheel there means a native build.
    code, _ = _pip(
        ["install", "--dry-run", "--ignore-installed", "--no-deps", "--only-binary=:all:", spec],
        progress,
        stream=False,
    )
    if code == 0:
        return (
            f"{name}{needed_by} is a native extension with no pure-Python or WASI build; "
            "it cannot run in a guest"
        )
    if versions:
        return f"no version of {spec}{needed_by} a guest can use (newest: {versions[-1]})"
    code, _ = _pip(["index", "versions", name], progress, stream=False)
    if code == 0:
        return (
            f"{spec}{needed_by} has no pure-Python wheel a guest can use "
            "(wactor installs wheels only, never builds source distributions)"
        )
    return f"no such package on the index: {name}{needed_by}"


def _say(progress: Progress, line: str) -> None:
    if progress is not None:
        progress(line)


def _explain(output: str, progress: Progress) -> str:
    if _UNREACHABLE.search(output):
        line = next((x for x in output.splitlines() if _UNREACHABLE.search(x)), "")
        return f"cannot reach the package index: {' '.join(line.split())[:200]}"
    match = _NO_MATCH.search(output)
    if match:
        found = _VERSIONS.search(output)
        listed = found[1] if found else "none"
        versions = [] if listed.strip() == "none" else [v.strip() for v in listed.split(",")]
        return _why_not(match[1], match[2], versions, progress)
    errors = [x.strip() for x in output.splitlines() if x.strip().startswith("ERROR:")]
    detail = errors[0].removeprefix("ERROR:").strip() if errors else "pip failed"
    return " ".join(detail.split())[:300]


def deps_key(requirements: Requirements, python: str) -> str:
    """The name of the directory the requirements are installed in."""
    digest = hashlib.sha256()
    for label, value in (("requirements", requirements.text), ("python", python), ("impl", "py")):
        data = value.encode()
        digest.update(f"{label}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def install_requirements(
    requirements: Requirements, cache_dir: Path, *, progress: Progress = None
) -> Path:
    """Install ``requirements`` for the guest into ``cache_dir/<key>`` unless already there.

    Returns the directory to put on the guest's Python path. Raises
    :class:`~wactor.errors.BuildError` naming a package no guest can run, or why pip failed.
    """
    python = guest_python_version()
    target = Path(cache_dir) / deps_key(requirements, python)
    if (target / ".complete").is_file():
        _say(progress, f"using installed dependencies from {requirements.source.name}")
        return target
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".deps.", suffix=".tmp", dir=cache_dir))
    try:
        listing = staging / "requirements.txt"
        listing.write_text(requirements.text + "\n", encoding="utf-8")
        site = staging / "site"
        _say(
            progress,
            f"installing dependencies from {requirements.source.name} for Python {python}…",
        )
        code, output = _pip(
            [
                "install",
                "--target",
                str(site),
                *_pip_flags(python),
                "--no-compile",
                "-r",
                str(listing),
            ],
            progress,
            stream=True,
        )
        if code != 0:
            reason = _explain(output, progress)
            raise BuildError(f"{requirements.source}: cannot install for the guest: {reason}")
        site.mkdir(exist_ok=True)
        (site / ".complete").write_text(json.dumps({"python": python}), encoding="utf-8")
        if target.exists() and not (target / ".complete").is_file():
            shutil.rmtree(target, ignore_errors=True)  # left unfinished by some other means
        try:
            site.rename(target)
        except OSError as exc:
            if not (target / ".complete").is_file():  # not another build's finished copy
                raise BuildError(f"cannot store packages in {target}: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
