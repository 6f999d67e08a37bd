"""``wactor new``: lay out a new Python guest project from the bundled templates."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from pathlib import Path

from wactor.errors import BuildError, ConfigError
from wactor.tooling._worlds import EXTENSIONS, extension_names

__all__ = ["new_project"]

# A project name becomes a directory, a module-free file name (<name>.wasm) and the middle
# segment of the component id, so it must be safe as all three.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}\Z")

# template file -> file written into the project
_FILES: tuple[tuple[str, str], ...] = (
    ("app.py.tmpl", "app.py"),
    ("component.toml.tmpl", "component.toml"),
    ("README.md.tmpl", "README.md"),
    ("requirements.txt.tmpl", "requirements.txt"),
    ("gitignore.tmpl", ".gitignore"),
)


# A tag alone on its line takes the line with it.
_TAG_LINE = re.compile(r"^\{\{([#^/]\w+)\}\}\n", re.MULTILINE)
# An innermost section: ``{{#flag}}...{{/flag}}`` (kept when the flag holds) or ``{{^flag}}``
# (kept when it does not), holding no other section.
_SECTION = re.compile(r"\{\{([#^])(\w+)\}\}((?:(?!\{\{[#^]).)*?)\{\{/\2\}\}", re.DOTALL)
_VARIABLE = re.compile(r"\{\{(\w+)\}\}")


def render(text: str, flags: dict[str, bool], variables: dict[str, str]) -> str:
    """Fill a template: sections by ``flags``, then ``{{variable}}`` by ``variables``."""
    text = _TAG_LINE.sub(lambda m: "{{" + m[1] + "}}", text)

    def section(match: re.Match[str]) -> str:
        keep = flags[match[2]] if match[1] == "#" else not flags[match[2]]
        return match[3] if keep else ""

    while True:
        filled = _SECTION.sub(section, text)
        if filled == text:
            break
        text = filled
    return _VARIABLE.sub(lambda m: variables[m[1]], text)


def _render(template: str, name: str, extensions: tuple[str, ...]) -> str:
    text = (importlib.resources.files("wactor") / "templates" / template).read_text("utf-8")
    flags = {ext: ext in extensions for ext in EXTENSIONS}
    flags["any"] = bool(extensions)
    listed = ",".join(extensions)
    variables = {
        "name": name,
        "with_list": listed,
        "with_flag": f" --with {listed}" if extensions else "",
    }
    return render(text, flags, variables)


def new_project(name: str, dest: Path, *, with_: Iterable[str] | str | None = None) -> Path:
    """Create ``dest/<name>/`` with ``app.py``, ``component.toml``, ``README.md``,
    ``requirements.txt`` (a commented example) and ``.gitignore``.

    The guest echoes every payload and logs through ``host-services``; its id is
    ``local/<name>/0``. ``with_`` names wactor extensions to use (see
    :func:`~wactor.tooling.build_guest`): with ``topics`` the guest subscribes to ``news.#`` and
    publishes what it echoes on ``<name>.echoed``; with ``http`` a message ``fetch URL`` makes
    the host fetch ``URL``, and the manifest grants ``api.example.com:443``. Raises
    :class:`~wactor.errors.ConfigError` if ``name`` is not a simple
    name (a letter, then up to 62 letters, digits, ``_`` or ``-``) or if the directory exists
    and is not empty. Returns the project directory.
    """
    try:
        extensions = extension_names(with_)
    except BuildError as exc:
        raise ConfigError(str(exc)) from None
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
    rendered = [(target, _render(template, name, extensions)) for template, target in _FILES]
    try:
        project.mkdir(parents=True, exist_ok=True)
        for target, text in rendered:
            (project / target).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot create {project}: {exc.strerror or exc}") from exc
    return project
