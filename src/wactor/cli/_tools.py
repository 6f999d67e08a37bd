"""Guest author verbs: ``build``, ``new``, ``inspect``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wactor._files import MAX_WASM_BYTES, read_regular_file
from wactor._text import escape_controls
from wactor.errors import InvalidComponentError, WactorError
from wactor.host._directories import default_cache_dir
from wactor.tooling import EXTENSIONS, build_guest, build_guest_cached, new_project
from wactor.tooling._worlds import extension_names

if TYPE_CHECKING:
    from wasmtime.component import Component

    from wactor.wasm import WasmEngine

__all__ = ["build", "inspect", "new"]


def _progress(line: str) -> None:
    click.echo(line, err=True)


@click.command()
@click.argument("app", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--with",
    "with_",
    metavar="NAMES",
    default="",
    help=f"Comma-separated wactor extensions the guest imports ({', '.join(sorted(EXTENSIONS))}).",
)
@click.option(
    "-r",
    "--requirements",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The guest's pip requirements (default: requirements.txt beside APP, else the "
    "[project].dependencies of a pyproject.toml beside it).",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A directory to add to the guest's Python path (vendored code); repeatable.",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Reuse an earlier build of the same sources and installed packages (kept in the "
    "user's cache directory).",
)
def build(  # noqa: PLR0917 - click passes each option by position
    app: Path,
    out: Path,
    with_: str,
    requirements: Path | None,
    paths: tuple[Path, ...],
    cache: bool,
) -> None:
    """Build a Python guest APP.py into a component against the bundled WIT.

    With --with the guest is built against runtime-host plus the named extensions: `http`
    (wactor:http/client, as `wit_world.imports.client`) and `topics` (wactor:topics/pubsub, as
    `wit_world.imports.pubsub`).

    The guest's pure-Python packages are installed for it with pip and bundled; packages with
    native code cannot run in a guest and are named. The guest sees only APP's directory, those
    packages and --path directories, never the packages of the Python running wactor.
    """
    options: dict[str, Any] = {"with_": with_, "requirements": requirements, "paths": paths}
    if not cache:
        build_guest(app, out, progress=_progress, **options)
        return
    built = build_guest_cached(
        app, default_cache_dir().parent / "guests", progress=_progress, **options
    )
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.copyfile(built, tmp)
    tmp.replace(out)
    _progress(f"wrote {out}")


@click.command()
@click.argument("name")
@click.option(
    "--dir",
    "dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to create the project directory.",
)
@click.option(
    "--with",
    "with_",
    metavar="NAMES",
    default="",
    help=f"Comma-separated wactor extensions to use ({', '.join(sorted(EXTENSIONS))}).",
)
def new(name: str, dest: Path, with_: str) -> None:
    """Scaffold a guest project NAME (app.py, component.toml, requirements.txt, README)."""
    path = new_project(name, dest, with_=with_)
    extensions = extension_names(with_)
    flag = f" --with {','.join(extensions)}" if extensions else ""
    click.echo(f"created {path}")
    click.echo(f"next: wactor build {path / 'app.py'} -o {path / (name + '.wasm')}{flag}")


def _describe(path: Path) -> dict[str, Any]:
    # the engine loads for `inspect`, not when `wactor --help` lists it
    from wactor.wasm import WasmEngine  # noqa: PLC0415
    from wactor.wasm._engine import check_binary_kind  # noqa: PLC0415

    try:
        data = read_regular_file(path, MAX_WASM_BYTES)
    except OSError as exc:
        raise InvalidComponentError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    info: dict[str, Any] = {
        "file": str(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    check_binary_kind(data, str(path))
    engine = WasmEngine(default_cache_dir())
    try:
        _progress(f"compiling {path.name} (cached after the first time)…")
        digest = info["sha256"]
        if engine.cache is not None:  # the plain build, cached like a host's (by its digest)
            component = engine.cache.load_or_compile(
                engine.engine, digest, lambda: _compile_any(engine, data, path)
            )
        else:
            component = _compile_any(engine, data, path)
        ctype = component.type
        info["imports"] = sorted(ctype.imports(engine.engine))
        info["exports"] = sorted(ctype.exports(engine.engine))
        known = {ext.interface for ext in EXTENSIONS.values()}
        info["extensions"] = [name for name in info["imports"] if name in known]
        try:
            engine.load(data, str(path))
            info["fits_world"] = True
        except WactorError as exc:
            info["fits_world"] = False
            info["problem"] = str(exc)
    finally:
        engine.close()
    return info


def _compile_any(engine: WasmEngine, data: bytes, path: Path) -> Component:
    import wasmtime  # noqa: PLC0415 - as in _describe
    from wasmtime.component import Component  # noqa: PLC0415

    try:
        return Component(engine.engine, data)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InvalidComponentError(f"not a valid component: {first}", path=str(path)) from exc


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def inspect(file: Path, as_json: bool) -> None:
    """Show a component's imports and exports and whether it fits the runtime-host world."""
    info = _describe(file)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['file']}: {info['size']} bytes, sha256 {info['sha256']}")
    click.echo("imports:")
    for name in info["imports"]:
        click.echo(f"  {escape_controls(name)}")  # a `url=<...>` name holds the guest's text
    click.echo("exports:")
    for name in info["exports"]:
        click.echo(f"  {escape_controls(name)}")
    if info["extensions"]:
        click.echo(f"extensions: {', '.join(info['extensions'])}")
    if info["fits_world"]:
        click.echo("fits airssys:core/runtime-host@1.0.0: yes")
    else:
        click.echo(f"fits airssys:core/runtime-host@1.0.0: no — {escape_controls(info['problem'])}")
        raise SystemExit(2)
