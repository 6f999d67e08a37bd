"""Validated reading of the operator's TOML files (manifests, host configs).

Every problem becomes one ``ConfigError`` subclass line naming the file, the dotted key
(``resources.memory``, ``capabilities.messaging.send[2]``) and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from wactor._units import format_size, parse_size
from wactor.errors import ConfigError

__all__ = ["ConfigTable", "quote_key", "read_config_file", "read_toml"]

_S = TypeVar("_S", bound=str)

# TOML integers are 64-bit signed; everything we read ends up in u64/i64 fields (wasmtime, SQLite).
_INT_MAX = 2**63 - 1

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}\Z")

# An operator's or author's file is small; a bigger one is a mistake (or /dev/zero), not config.
MAX_CONFIG_BYTES = 1024 * 1024

# Longest problem text of one error line (values are quoted in it).
_MAX_MESSAGE = 1000

# A key from the file is shown as is unless it could be misread (a dot, a quote, a space) or break
# the one-line error (a newline, a control character): then quoted and escaped, as TOML writes it.
_PLAIN_KEY = re.compile(r"^[^\s.\"'\[\]]+\Z")


def read_config_file(
    path: Path, error: type[ConfigError], *, allowed: Sequence[str], content: bytes | None = None
) -> ConfigTable:
    """Parse the TOML file at ``path`` and return its root table, checked against ``allowed``.

    ``content``: the file's bytes when the caller has read them already (with
    :func:`read_config_bytes`; then parsed as given, so the bytes checked are the bytes parsed).
    """
    raw = read_config_bytes(path, error) if content is None else content
    return ConfigTable(
        parse_toml(raw, path, error), file=str(path), prefix="", error=error, allowed=allowed
    )


def read_toml(path: Path, error: type[ConfigError]) -> dict[str, Any]:
    """Read and parse the TOML file at ``path``, raising ``error`` for any problem."""
    return parse_toml(read_config_bytes(path, error), path, error)


def read_config_bytes(path: Path, error: type[ConfigError]) -> bytes:
    """Read a config file's bytes, at most one byte past the size a config may have."""
    file = str(path)
    try:
        # Non-blocking, so that a FIFO in place of the file cannot hang the host.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise error("not a regular file", file=file)
            return f.read(MAX_CONFIG_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"cannot read file: {reason}", file=file) from exc


def parse_toml(raw: bytes, path: Path, error: type[ConfigError]) -> dict[str, Any]:
    """Parse a config file's bytes, raising ``error`` naming ``path`` for any problem."""
    file = str(path)
    if len(raw) > MAX_CONFIG_BYTES:
        raise error(f"file is larger than {format_size(MAX_CONFIG_BYTES)}", file=file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (bad byte at offset {exc.start})", file=file) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise error(f"invalid TOML: {exc}", file=file) from exc
    except RecursionError as exc:  # tomllib parses nested arrays and inline tables recursively
        raise error("invalid TOML: arrays or tables nested too deeply", file=file) from exc
    return data


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__  # dates and times


def quote_key(name: str) -> str:
    """Show a key from the file as TOML would write it: bare, or quoted and escaped."""
    shown = name if _PLAIN_KEY.match(name) and name.isprintable() else json.dumps(name)
    return shown if len(shown) <= 100 else shown[:97] + "..."


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ConfigTable:
    """One TOML table under validation: it knows its file, its dotted name and its allowed keys."""

    __slots__ = ("_data", "_error", "_file", "_prefix")

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        file: str,
        prefix: str,
        error: type[ConfigError],
        allowed: Sequence[str],
    ) -> None:
        self._data = data
        self._file = file
        self._prefix = prefix
        self._error = error
        for name, value in data.items():
            if name not in allowed:
                what = "table" if isinstance(value, dict) else "key"
                hint = get_close_matches(name, allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.fail(
                    quote_key(name),
                    f"unknown {what}{suggestion}",
                    expected="one of " + ", ".join(allowed) if allowed else "no keys here",
                )

    def key(self, name: str) -> str:
        """Return the dotted name of ``name`` inside this table."""
        return f"{self._prefix}.{name}" if self._prefix else name

    def fail(self, name: str, message: str, *, expected: str | None = None) -> NoReturn:
        """Raise this file's error class for key ``name``."""
        if len(message) > _MAX_MESSAGE:  # a value quoted in full could be a mebibyte long
            message = message[: _MAX_MESSAGE - 3] + "..."
        raise self._error(message, file=self._file, key=self.key(name), expected=expected)

    def _wrong_type(self, name: str, value: object, expected: str) -> NoReturn:
        self.fail(name, f"got {_type_name(value)} {_show(value)}", expected=expected)

    def has(self, name: str) -> bool:
        """Tell whether ``name`` is present."""
        return name in self._data

    # --- scalars -----------------------------------------------------------------------------

    def req_str(self, name: str) -> str:
        """Return the required string ``name``."""
        value = self._data.get(name)
        if value is None:
            self.fail(name, "missing required key", expected="a string")
        if not isinstance(value, str):
            self._wrong_type(name, value, "a string")
        return value

    def opt_str(self, name: str) -> str | None:
        """Return the string ``name``, or ``None`` when absent."""
        value = self._data.get(name)
        if value is not None and not isinstance(value, str):
            self._wrong_type(name, value, "a string")
        return value

    def choice(self, name: str, choices: Sequence[_S], default: _S) -> _S:
        """Return ``name``, which must be one of ``choices``."""
        value = self.opt_str(name)
        if value is None:
            return default
        matches = [option for option in choices if option == value]
        if not matches:
            self.fail(name, f"got {value!r}", expected="one of " + ", ".join(choices))
        return matches[0]

    def boolean(self, name: str, default: bool) -> bool:
        """Return the boolean ``name``."""
        value = self._data.get(name, default)
        if not isinstance(value, bool):
            self._wrong_type(name, value, "true or false")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int = _INT_MAX) -> int:
        """Return the integer ``name``, checked against ``minimum`` and ``maximum``."""
        value = self.opt_integer(name, minimum=minimum, maximum=maximum)
        return default if value is None else value

    def opt_integer(self, name: str, *, minimum: int, maximum: int = _INT_MAX) -> int | None:
        """Return the integer ``name`` or ``None`` when absent."""
        value = self._data.get(name)
        if value is None:
            return None
        expected = f"an integer >= {minimum}"
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong_type(name, value, expected)
        if value < minimum:
            self.fail(name, f"{value} is too small", expected=expected)
        if value > maximum:
            self.fail(name, f"{value} is too large", expected=f"an integer <= {maximum}")
        return value

    def number(self, name: str, default: float) -> float:
        """Return the positive, finite number (integer or float) ``name``."""
        value = self._data.get(name)
        if value is None:
            return default
        expected = "a number > 0"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong_type(name, value, expected)
        try:
            number = float(value)
        except OverflowError:  # an integer past the float range (TOML's parser has no bound)
            number = math.inf
        if not math.isfinite(number) or number <= 0:
            self.fail(name, f"{_show(value)} is out of range", expected=expected)
        return number

    def size(self, name: str, default: int, *, minimum: int) -> int:
        """Return the byte size ``name`` (``"64MiB"`` or an integer of bytes)."""
        value = self.opt_size(name, minimum=minimum)
        return default if value is None else value

    def opt_size(self, name: str, *, minimum: int) -> int | None:
        """Return the byte size ``name`` or ``None`` when absent."""
        value = self._data.get(name)
        if value is None:
            return None
        expected = f"a size >= {format_size(minimum)} such as '64MiB' or a byte count"
        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(name, str(exc), expected=expected)
        if size < minimum:
            self.fail(name, f"{value!r} is too small", expected=expected)
        if size > _INT_MAX:
            self.fail(name, f"{value!r} is too large", expected=expected)
        return size

    # --- compounds ---------------------------------------------------------------------------

    def str_list(self, name: str) -> tuple[str, ...]:
        """Return the array of strings ``name`` (empty when absent)."""
        value = self._data.get(name, [])
        if not isinstance(value, list):
            self._wrong_type(name, value, "an array of strings")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self._wrong_type(f"{name}[{index}]", item, "a string")
        return tuple(value)

    def path_list(self, name: str, base: Path) -> tuple[Path, ...]:
        """Return the array of paths ``name``, resolved against ``base``."""
        return tuple(
            self._path(f"{name}[{index}]", text, base)
            for index, text in enumerate(self.str_list(name))
        )

    def opt_path(self, name: str, base: Path) -> Path | None:
        """Return the path ``name`` resolved against ``base``, or ``None`` when absent."""
        text = self.opt_str(name)
        return None if text is None else self._path(name, text, base)

    def dir_list(self, name: str, base: Path) -> tuple[Path, ...]:
        """Return the array of paths ``name`` resolved against ``base``; each must be an
        existing directory."""
        return self._existing(name, base, stat.S_ISDIR, "directory")

    def file_list(self, name: str, base: Path) -> tuple[Path, ...]:
        """Return the array of paths ``name`` resolved against ``base``; each must be an
        existing regular file."""
        return self._existing(name, base, stat.S_ISREG, "file")

    def _existing(
        self, name: str, base: Path, is_kind: Callable[[int], bool], kind: str
    ) -> tuple[Path, ...]:
        paths = self.path_list(name, base)
        for index, path in enumerate(paths):
            problem = _kind_problem(path, is_kind, kind)
            if problem:
                self.fail(f"{name}[{index}]", f"{problem}: {path}", expected=f"an existing {kind}")
        return paths

    def req_file(self, name: str, base: Path, *, expected: str) -> Path:
        """Return the required path ``name`` resolved against ``base``; it must be an existing
        regular file."""
        path = self._path(name, self.req_str(name), base, expected=expected)
        problem = _kind_problem(path, stat.S_ISREG, "file")
        if problem:
            self.fail(name, f"{problem}: {path}", expected=expected)
        return path

    def _path(
        self, name: str, text: str, base: Path, *, expected: str = "a non-empty path"
    ) -> Path:
        if not text or "\0" in text:
            self.fail(name, f"bad path {_show(text)}", expected=expected)
        try:
            return (base / Path(text).expanduser()).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            # "~nobody/x" (no such user), a symlink loop, a name too long for the OS
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.fail(name, f"bad path {_show(text)}: {reason}", expected=expected)

    def digest(self, name: str, text: str) -> str:
        """Normalise ``sha256:HEX`` or ``HEX`` (the value of ``name``) to lowercase hex."""
        hex_part = text.removeprefix("sha256:")
        if not _SHA256.match(hex_part):
            self.fail(
                name,
                f"bad digest {_show(text)}",
                expected="64 hex digits, optionally after 'sha256:'",
            )
        return hex_part.lower()

    def str_map(self, name: str) -> dict[str, str]:
        """Return the table of strings ``name`` (empty when absent)."""
        value = self._data.get(name, {})
        if not isinstance(value, dict):
            self._wrong_type(name, value, "a table of strings")
        for key, item in value.items():
            if not isinstance(item, str):
                self._wrong_type(f"{name}.{quote_key(key)}", item, "a string")
        return dict(value)

    def table(self, name: str, allowed: Sequence[str]) -> ConfigTable | None:
        """Return the sub-table ``name`` checked against ``allowed``, or ``None`` when absent."""
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self._wrong_type(name, value, "a table")
        return ConfigTable(
            value, file=self._file, prefix=self.key(name), error=self._error, allowed=allowed
        )


def _kind_problem(path: Path, is_kind: Callable[[int], bool], kind: str) -> str | None:
    """Say why ``path`` is not an existing ``kind`` (symlinks followed), or ``None``."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{kind} not found"
    except OSError as exc:
        return f"cannot use this {kind}: {exc.strerror or exc}"
    return None if is_kind(mode) else f"not a {kind}"
