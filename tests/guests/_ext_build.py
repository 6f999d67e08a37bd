"""Build test guests against the contract world ``wactor:http/runtime-host-http``.

The world is the contract's own (``src/wactor/wit-ext/wactor-http.wit``, which includes
``airssys:core/runtime-host``); componentize-py reads it with the core WIT under ``deps/``.
Builds are cached by content, like :mod:`guests._build`, and one lock makes parallel workers
wait for a single build.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from wactor.tooling._build import _componentize_command, componentize_py_version

__all__ = ["built_http_guest"]

_GUESTS = Path(__file__).resolve().parent
CACHE_DIR = _GUESTS.parents[1] / ".fixture-cache" / "ext-guests"
_WORLD = "runtime-host-http"


def _wit() -> dict[str, bytes]:
    package = resources.files("wactor")
    return {
        "wactor-http.wit": (package / "wit-ext" / "wactor-http.wit").read_bytes(),
        "deps/airssys/airssys-core.wit": (package / "wit" / "airssys-core.wit").read_bytes(),
    }


def _key(app: Path, wit: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for label, data in [("app", app.read_bytes()), *sorted(wit.items())]:
        digest.update(f"{label}\0{len(data)}\0".encode() + data)
    digest.update(componentize_py_version().encode() + _WORLD.encode())
    return digest.hexdigest()


def built_http_guest(name: str) -> Path:
    """Return the component built from ``tests/guests/<name>/app.py`` for the http world."""
    app = _GUESTS / name / "app.py"
    wit = _wit()
    out = CACHE_DIR / f"http-{_key(app, wit)}.wasm"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if out.is_file():
                return out
            with tempfile.TemporaryDirectory(prefix="wactor-http-wit-") as tmp:
                for relative, data in wit.items():
                    path = Path(tmp) / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                staged = CACHE_DIR / f".{out.name}.{os.getpid()}.tmp"  # renamed in place
                command = [*_componentize_command(), "-d", tmp, "-w", _WORLD, "componentize"]
                subprocess.run(
                    [*command, "-p", str(app.parent), "app", "-o", str(staged)],
                    check=True,
                    capture_output=True,
                    env=dict(os.environ, RUST_BACKTRACE="0"),
                    timeout=600,
                )
                os.replace(staged, out)
            return out
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
