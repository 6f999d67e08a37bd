"""Build test guests once per source change, shared by parallel test workers."""

from __future__ import annotations

import fcntl
from pathlib import Path

from wactor.tooling import build_guest_cached

__all__ = ["CACHE_DIR", "built_guest"]

_ROOT = Path(__file__).resolve().parents[2]
_GUESTS = Path(__file__).resolve().parent
CACHE_DIR = _ROOT / ".fixture-cache" / "guests"


def _source(name: str) -> Path:
    if name.startswith("examples/"):
        return _ROOT / name / "app.py"
    return _GUESTS / name / "app.py"


def _extensions(app: Path) -> str:
    """The extensions a guest is built with: the text of a ``with`` file beside its ``app.py``
    (``topics`` or ``http,topics``), or none."""
    marker = app.parent / "with"
    return marker.read_text().strip() if marker.is_file() else ""


def built_guest(name: str) -> Path:
    """Return the component built from ``tests/guests/<name>/app.py`` (or ``examples/<x>``),
    with the extensions its ``with`` file names.

    Builds through the content-addressed cache in ``.fixture-cache/guests``; an exclusive lock
    on ``.lock`` there makes concurrent workers wait for one build instead of each building.
    """
    app = _source(name)
    if not app.is_file():
        raise FileNotFoundError(f"no guest {name!r}: {app} does not exist")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return build_guest_cached(app, CACHE_DIR, with_=_extensions(app))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
