"""Build Python guests into components with componentize-py.

A guest is built against the ``runtime-host`` world, or with ``with_`` against a world that adds
wactor's extensions (``http``, ``topics``; see :mod:`wactor.tooling._worlds`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from wactor.errors import BuildError
from wactor.tooling._deps import find_requirements, guest_python_version, install_requirements
from wactor.tooling._worlds import (
    CORE_WORLD,
    EXTENDED_WORLD,
    EXTENSIONS,
    extension_names,
    wit_digest_input,
    wit_dir,
)

__all__ = ["WORLD", "build_guest", "build_guest_cached", "componentize_py_version"]

#: The world a guest is built against when it uses no extension.
WORLD = CORE_WORLD

#: A build that takes longer than this is hung, not slow (a cold build takes ~7-10 s).
_BUILD_TIMEOUT_S = 600.0

Progress = Callable[[str], None] | None

# A Python exception line as componentize-py relays it, e.g. "SyntaxError: invalid syntax (...)".
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(?::\s*(.*))?$")
# Lines that never explain anything by themselves.
_NOISE = re.compile(r"^(Traceback \(most recent call last\):|File \"|\^+$|~+$|Stack backtrace:)")


def _say(progress: Progress, line: str) -> None:
    if progress is not None:
        progress(line)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# --- componentize-py -------------------------------------------------------------------------


def _componentize_command() -> list[str]:
    """How to run componentize-py with the interpreter running wactor.

    ``python -m componentize_py`` is used when the package supports it (0.25.1 has no
    ``__main__``); otherwise the ``componentize-py`` script installed next to ``sys.executable``;
    otherwise the package's ``script()`` entry point through ``python -c``.
    """
    if importlib.util.find_spec("componentize_py") is not None:
        with contextlib.suppress(ImportError, ValueError):
            if importlib.util.find_spec("componentize_py.__main__") is not None:
                return [sys.executable, "-m", "componentize_py"]
    bindir = Path(sys.executable).parent
    for name in ("componentize-py", "componentize-py.exe"):
        script = bindir / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    if importlib.util.find_spec("componentize_py") is not None:
        shim = (
            "import sys; from componentize_py import script; "
            "sys.argv[0] = 'componentize-py'; sys.exit(script())"
        )
        return [sys.executable, "-c", shim]
    found = shutil.which("componentize-py")
    if found:
        return [found]
    # It is a dependency of wactor: only an install made with --no-deps (or a package removed
    # afterwards) gets here.
    raise BuildError(
        "componentize-py, a dependency of wactor, is missing from this Python environment; "
        "reinstall wactor with its dependencies: pip install --force-reinstall wactor"
    )


def componentize_py_version() -> str:
    """The installed componentize-py version, e.g. ``"0.25.1"``."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version("componentize-py")
    result = subprocess.run(
        [*_componentize_command(), "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    text = (result.stdout or result.stderr).strip()
    if result.returncode != 0 or not text:
        raise BuildError("cannot tell the componentize-py version: `--version` failed")
    return text.split()[-1]


def _first_meaningful_line(output: str) -> str:
    """Pick the line of componentize-py's output that says what went wrong.

    componentize-py ends a failed build with ``Caused by:`` followed by the root cause (for a
    guest that does not import: the Python exception line, ``SyntaxError: ... (app.py, line 3)``),
    then a Rust stack backtrace when ``RUST_BACKTRACE`` is set.
    """
    lines = [line.rstrip() for line in output.splitlines()]
    for index, line in enumerate(lines):
        if line.strip() == "Caused by:":
            for cause in lines[index + 1 :]:
                text = cause.strip()
                if text:
                    return re.sub(r"^\d+:\s*", "", text)
    stripped = [line.strip() for line in lines if line.strip()]
    # A relayed Python exception; the wrapper's "AssertionError: <traceback>" is not one.
    for text in stripped:
        match = _EXCEPTION_LINE.match(text)
        if match and not (match[1] == "AssertionError" and _NOISE.match(match[2] or "")):
            return text
    for text in stripped:
        if text.lower().startswith("error"):
            return text
    for text in stripped:
        if not _NOISE.match(text) and not text.startswith("sys.exit("):
            return text
    return "no output"


# How a guest that imports an extension it was not built with fails.
_MISSING_IMPORT = re.compile(
    r"cannot import name '(\w+)' from 'wit_world\.imports'"
    r"|No module named 'wit_world\.imports\.(\w+)'"
)


def _extension_hint(reason: str, extensions: tuple[str, ...]) -> str:
    """``; build with --with topics`` when ``reason`` is a missing extension import."""
    match = _MISSING_IMPORT.search(reason)
    if match is None:
        return ""
    module = match[1] or match[2]
    for name, ext in EXTENSIONS.items():
        if ext.module == module and name not in extensions:
            wanted = ",".join((*extensions, name))
            return f"; it is in the {name!r} extension: build with --with {wanted}"
    return ""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


Extensions = Iterable[str] | str | None
#: Say how long a build has been running this often, so a slow one does not look hung.
_HEARTBEAT_S = 15.0


def _check_app(app: Path) -> str:
    """The module name of the guest ``app``; raises if ``app`` cannot be one."""
    if not app.is_file():
        raise BuildError(f"{app}: no such file")
    if app.suffix != ".py":
        raise BuildError(f"{app}: a guest must be a .py file")
    module = app.stem
    if not module.isidentifier():
        raise BuildError(f"{app}: {module!r} is not a valid Python module name")
    return module


def _check_paths(paths: Iterable[Path | str]) -> tuple[Path, ...]:
    checked: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.is_dir():
            raise BuildError(f"{path}: --path must name a directory")
        checked.append(path.resolve())
    return tuple(checked)


def _guest_env(empty_dir: Path) -> dict[str, str]:
    """componentize-py's environment: nothing that adds the host's packages to the guest.

    It appends ``$VIRTUAL_ENV``'s site-packages to the guest's path, else ``pipenv --venv``'s,
    else those of the ``python3`` found on ``PATH``; it is run by absolute path, so ``PATH``
    can name an empty directory.
    """
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["PATH"] = str(empty_dir)
    env["RUST_BACKTRACE"] = "0"
    return env


def _run(args: list[str], env: dict[str, str], app: Path, progress: Progress) -> tuple[int, str]:
    """Run componentize-py; tell ``progress`` every so often that it still runs."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except OSError as exc:
        raise BuildError(f"{app}: cannot run componentize-py: {exc}") from None
    with proc:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=_HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > _BUILD_TIMEOUT_S:
                    proc.kill()
                    raise BuildError(
                        f"{app}: componentize-py did not finish within {_BUILD_TIMEOUT_S:g}s"
                    ) from None
                _say(progress, f"  still building {app.name} ({elapsed:.0f}s)…")
    return proc.returncode, f"{stderr}\n{stdout}"


def _install_deps(
    app: Path, requirements: Path | None, deps_cache: Path, progress: Progress
) -> Path | None:
    found = find_requirements(app, requirements)
    if found is None or found.empty:
        return None
    return install_requirements(found, deps_cache, progress=progress)


def build_guest(
    app: Path,
    out: Path,
    *,
    with_: Extensions = None,
    requirements: Path | None = None,
    paths: Iterable[Path | str] = (),
    deps_cache: Path | None = None,
    progress: Progress = None,
) -> Path:
    """Build the Python guest ``app`` (a ``.py`` file) into the component ``out``.

    The module name is ``app``'s stem and its directory goes on the guest's Python path; the
    module must define ``class ComponentLifecycle(exports.ComponentLifecycle)``.

    ``with_`` names wactor extensions the guest imports (``"http,topics"`` or ``["http",
    "topics"]``): it is then built against ``runtime-host`` plus those interfaces, which appear
    in ``wit_world.imports`` (``client``, ``pubsub``).

    The guest's third-party packages come from ``requirements`` (a pip requirements file),
    else ``requirements.txt`` beside ``app``, else the ``[project].dependencies`` of a
    ``pyproject.toml`` beside it. They are installed for the guest's Python (pure-Python
    wheels only) into ``deps_cache`` (kept for the next build; a temporary directory if
    ``None``). ``paths`` are more directories for the guest's Python path (vendored code).
    The guest sees only these, never the packages of the Python running the build.

    ``out`` is replaced atomically, so a failed or interrupted build never leaves a partial
    file behind. Raises :class:`~wactor.errors.BuildError` with a one-line reason.
    """
    app = Path(app)
    out = Path(out)
    extensions = extension_names(with_)
    module = _check_app(app)
    extra = _check_paths(paths)
    command = _componentize_command()
    out.parent.mkdir(parents=True, exist_ok=True)

    # componentize-py creates the file itself (so it gets the usual permissions) inside a private
    # directory next to ``out``; the rename into place is then atomic.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    tmp = staging / out.name
    empty = staging / "path"  # componentize-py's PATH: nothing to find there
    empty.mkdir()
    try:
        site = _install_deps(app, requirements, deps_cache or staging / "deps", progress)
        python_path = [app.resolve().parent, *extra, *([site] if site else [])]
        world_note = f" --with {','.join(extensions)}" if extensions else ""
        _say(progress, f"building {app.name}{world_note} with componentize-py…")
        started = time.monotonic()
        with wit_dir(extensions) as (wit, world):
            args = [*command, "-d", str(wit), "-w", world, "componentize"]
            for folder in python_path:
                args += ["-p", str(folder)]
            args += [module, "-o", str(tmp)]
            code, output = _run(args, _guest_env(empty), app, progress)
        if code != 0:
            reason = _one_line(_first_meaningful_line(output))
            raise BuildError(f"{app}: build failed: {reason}{_extension_hint(reason, extensions)}")
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise BuildError(f"{app}: build failed: componentize-py wrote no component")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    elapsed = time.monotonic() - started
    _say(progress, f"wrote {out.name} ({_human_size(out.stat().st_size)}) in {elapsed:.1f}s")
    return out


def _skipped(relative: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in relative.parts[:-1])


def _tree(root: Path, pattern: str) -> list[tuple[str, Path]]:
    """The files under ``root`` matching ``pattern``, outside hidden and cache directories."""
    found = []
    for path in root.rglob(pattern):
        relative = path.relative_to(root)
        if path.is_file() and not _skipped(relative):
            found.append((relative.as_posix(), path))
    return sorted(found)


def cache_key(
    app: Path,
    *,
    with_: Extensions = None,
    requirements: Path | None = None,
    paths: Iterable[Path | str] = (),
) -> str:
    """The cache key of ``app``: its source and every module in its directory tree, the WIT
    (with the extensions' WIT and the generated world when ``with_`` names any),
    componentize-py, the requirements text and guest Python, and every file of ``paths``."""
    app = Path(app)
    extensions = extension_names(with_)
    extra = _check_paths(paths)
    found = find_requirements(app, requirements)
    digest = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    try:
        feed(f"app:{app.name}", app.read_bytes())
        for name, path in _tree(app.parent, "*.py"):
            if name != app.name:
                feed(f"py:{name}", path.read_bytes())
        for index, folder in enumerate(extra):
            for name, path in _tree(folder, "*"):
                feed(f"path{index}:{name}", path.read_bytes())
    except OSError as exc:
        raise BuildError(f"{app}: cannot read guest source: {exc.strerror or exc}") from None
    feed("wit", wit_digest_input(extensions))
    feed("componentize-py", componentize_py_version().encode())
    # A guest without extensions or packages keeps the key it had before either existed.
    feed("world", (EXTENDED_WORLD if extensions else WORLD).encode())
    if extensions:
        feed("with", ",".join(extensions).encode())
    if found is not None and not found.empty:
        feed("requirements", found.text.encode())
        feed("guest-python", guest_python_version().encode())
    if extra:
        feed("paths", str(len(extra)).encode())
    return digest.hexdigest()


def build_guest_cached(
    app: Path,
    cache_dir: Path,
    *,
    with_: Extensions = None,
    requirements: Path | None = None,
    paths: Iterable[Path | str] = (),
    progress: Progress = None,
) -> Path:
    """Build ``app`` into ``cache_dir/<key>.wasm`` unless that file already exists.

    See :func:`cache_key` for what the key covers and :func:`build_guest` for the options; the
    guest's packages are installed under ``cache_dir/deps``. The component is written to a
    temporary file and renamed into place, so concurrent builders never see a partial file
    (they may both build, though; callers that care hold a lock around this call).
    """
    app = Path(app)
    extensions = extension_names(with_)
    _check_app(app)
    extra = _check_paths(paths)
    cache_dir = Path(cache_dir)
    key = cache_key(app, with_=extensions, requirements=requirements, paths=extra)
    out = cache_dir / f"{key}.wasm"
    if out.is_file():
        _say(progress, f"using cached build of {app.name} ({out.name[:16]}…)")
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    return build_guest(
        app,
        out,
        with_=extensions,
        requirements=requirements,
        paths=extra,
        deps_cache=cache_dir / "deps",
        progress=progress,
    )
