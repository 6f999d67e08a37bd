"""``wactor new``: lay out a new Python guest project from the bundled templates."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

from wactor.errors import ConfigError

__all__ = ["new_project"]

# A project name becomes a directory, a module-free file name (<name>.wasm) and the middle
# segment of the component id, so it must be safe as all three.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}\Z")

# template file -> file written into the project
_FILES: tuple[tuple[str, str], ...] = (
    ("app.py.tmpl", "app.py"),
    ("component.toml.tmpl", "component.toml"),
    ("README.md.tmpl", "README.md"),
    ("gitignore.tmpl", ".gitignore"),
)


def _render(template: str, name: str) -> str:
    text = (importlib.resources.files("wactor") / "templates" / template).read_text("utf-8")
    return text.replace("{{name}}", name)


def new_project(name: str, dest: Path) -> Path:
    """Create ``dest/<name>/`` with ``app.py``, ``component.toml``, ``README.md``, ``.gitignore``.

    The guest echoes every payload and logs through ``host-services``; its id is
    ``local/<name>/0``. Raises :class:`~wactor.errors.ConfigError` if ``name`` is not a simple
    name (a letter, then up to 62 letters, digits, ``_`` or ``-``) or if the directory exists
    and is not empty. Returns the project directory.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"invalid project name {name!r}",
            expected="a letter followed by up to 62 letters, digits, '_' or '-'",
        )
    project = Path(dest) / name
    if project.exists():
        if not project.is_dir():
            raise ConfigError(f"{project} exists and is not a directory")
        if any(project.iterdir()):
            raise ConfigError(f"{project} already exists and is not empty")
    rendered = [(target, _render(template, name)) for template, target in _FILES]
    try:
        project.mkdir(parents=True, exist_ok=True)
        for target, text in rendered:
            (project / target).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot create {project}: {exc.strerror or exc}") from exc
    return project
